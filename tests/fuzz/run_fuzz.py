"""`make fuzz`: schemathesis against the project's own OpenAPI schema, on a throwaway server.

Starts gunicorn on a temporary SQLite database holding the demo set (jobs run inside the web
process), signs in as a researcher and as a lomas admin through /o/token, and runs every
schemathesis check over every operation of /api/schema with each token: the researcher first,
then the admin (whose random DELETEs may empty collections). Prints how many requests were
sent and every failure; exits non-zero on any failure, and on any internal error the server
logged (a job that failed with a 500 is seen only there).

Arguments go to `schemathesis run`; FUZZ_MAX_EXAMPLES (default 30) is the number of test cases
per operation and phase. Reports (JSON summary, HAR of every request) go to var/fuzz/.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SCHEMATHESIS = str(Path(PYTHON).with_name("schemathesis"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
REPORTS = ROOT / "var" / "fuzz"
# What the server logs for a 500, an unhandled exception or a job that failed internally.
INTERNAL_ERROR = re.compile(r"Traceback|internal error|unhandled error|failed internally|Internal Server Error")
PERSONAS = [("researcher", "Dr.Antartica", "dr.antartica"), ("admin", "admin", "admin")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "LOMAS_VAR_DIR": str(var_dir),
        "LOMAS_DATA_DIR": str(var_dir / "data"),
        "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        # Fuzzing sends thousands of submissions a minute: the submit limit would answer most of them.
        "LOMAS_SUBMIT_LIMIT": "0",
        "LOMAS_JOB_SOFT_TIME_LIMIT": "20",
        "LOMAS_STATUS_WAIT_SECONDS": "0.1",
        "LOMAS_LOG_LEVEL": "WARNING",
    }


def _token(base_url: str, username: str, password: str) -> str:
    response = requests.post(
        f"{base_url}/o/token/",
        data={"grant_type": "password", "client_id": "lomas_client", "username": username, "password": password},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def _wait_until_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            if requests.get(f"{base_url}/api/live", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not start")


def _fuzz(base_url: str, persona: str, token: str, extra: list[str]) -> dict[str, int]:
    """One schemathesis run with the persona's token; requests sent and failures found."""
    summary, har = REPORTS / f"{persona}.json", REPORTS / f"{persona}.har"
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/api/schema?format=json",
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        os.environ.get("FUZZ_MAX_EXAMPLES", "30"),
        # One thread: with two, CPython 3.11 before 3.11.8 now and then raised "AST constructor
        # recursion depth mismatch" (gh-106905) inside hypothesis, a schemathesis error with no request.
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--seed",
        os.environ.get("FUZZ_SEED", "1"),
        "--report",
        "json,har",
        "--report-json-path",
        str(summary),
        "--report-har-path",
        str(har),
        "--warnings",
        "off",
        *extra,
    ]
    print(f"\n=== schemathesis as the {persona} ===", flush=True)
    returncode = subprocess.run(command, cwd=REPORTS, check=False).returncode
    report = json.loads(summary.read_text(encoding="utf-8"))
    return {
        "requests": len(json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]),
        "failures": sum(group["count"] for group in report["failures"]),
        "errors": sum(group["count"] for group in report["errors"]),
        "exit": returncode,
    }


def main(extra: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="lomas-fuzz-") as tmp:
        var_dir = Path(tmp)
        env = _environment(var_dir)
        for command in (["migrate", "--noinput"], ["lomas_demo_setup", "--skip-generated"]):
            subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = (var_dir / "server.log").open("wb")
        command = [PYTHON, "-m", "gunicorn", "lomas.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                   "--timeout", "120"]  # fmt: skip
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(base_url, server)
            tokens = {persona: _token(base_url, user, password) for persona, user, password in PERSONAS}
            REPORTS.mkdir(parents=True, exist_ok=True)
            results = {persona: _fuzz(base_url, persona, tokens[persona], extra) for persona, *_ in PERSONAS}
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
        server_log = (var_dir / "server.log").read_text(encoding="utf-8", errors="replace")
        (REPORTS / "server.log").write_text(server_log, encoding="utf-8")
    total_requests = sum(r["requests"] for r in results.values())
    total_failures = sum(r["failures"] + r["errors"] for r in results.values())
    print("\n=== make fuzz ===")
    for persona, result in results.items():
        print(
            f"{persona}: {result['requests']} requests, {result['failures']} failures,"
            f" {result['errors']} errors (exit {result['exit']})"
        )
    internal = [line for line in server_log.splitlines() if INTERNAL_ERROR.search(line)]
    print(f"total: {total_requests} requests, {total_failures} failures, {len(internal)} internal errors logged")
    for line in internal[:50]:
        print(f"  {line}")
    clean = total_failures == 0 and not internal and all(r["exit"] == 0 for r in results.values())
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
