"""A live lomas-django stack for integration tests: PostgreSQL, Redis, a Celery worker
and the web server, each a real process, driven over HTTP and by lomas-client 0.5.1.
"""

import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PYTHON = ROOT / ".venv-client" / "bin" / "python"
RUNNER = Path(__file__).with_name("lomas_client_runner.py")
DATABASE_URL = os.environ.get("LOMAS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BROKER_URL = os.environ.get("LOMAS_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
DATABASE_NAME = f"lomas_it_{os.getpid()}"


def _unavailable(reason: str) -> None:
    if os.environ.get("LOMAS_REQUIRE_INTEGRATION"):
        pytest.fail(f"integration stack unavailable: {reason}", pytrace=False)
    pytest.skip(f"integration stack unavailable: {reason}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin_dsn() -> str:
    parts = urlsplit(DATABASE_URL)
    return urlunsplit(parts._replace(path="/postgres"))


@dataclass
class LiveStack:
    """The running server and how to reach it."""

    base_url: str
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    root: Path = ROOT  # the source tree the server runs from

    def start_process(self, name: str, command: list[str], logs: Path) -> subprocess.Popen:
        """Start one of the stack's processes, its output in ``logs/<name>.log``."""
        log = (logs / f"{name}.log").open("a")
        process = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    @property
    def api(self) -> str:
        return f"{self.base_url}/api"

    def token(self, username: str, password: str) -> str:
        """An access token from the password grant, as lomas-client gets it."""
        response = requests.post(
            f"{self.base_url}/o/token/",
            data={
                "grant_type": "password",
                "username": username,
                "password": password,
                "client_id": "lomas_client",
                "scope": "openid profile email offline_access",
            },
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def post(self, route: str, token: str | None, body: Any, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.api}/{route}", json=body, headers=headers, timeout=60, **kwargs)

    def get(self, route: str, token: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(f"{self.api}/{route}", headers=headers, timeout=60)

    def wait_job(self, uid: str, token: str, timeout: float = 120) -> requests.Response:
        """Poll a job until it is complete or failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.get(f"status/{uid}", token)
            if response.json().get("status") in {"complete", "failed"}:
                return response
            time.sleep(0.2)
        raise TimeoutError(f"job {uid} did not finish")

    def pool_processes(self, worker: int = 0) -> list[int]:
        """The pids of a Celery worker's pool processes (the children of its main process)."""
        tasks = Path(f"/proc/{self.processes[worker].pid}/task").glob("*/children")
        return sorted({int(pid) for children in tasks for pid in children.read_text().split()})

    def manage(self, *args: str) -> str:
        """Run a manage.py command against the stack's database."""
        command = [sys.executable, "manage.py", *args]
        done = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True, text=True, check=True)
        return done.stdout

    def add_researchers(self, researchers: dict[str, tuple[str, dict[str, tuple[float, float]]]]) -> None:
        """Create researchers, {name: (password, {dataset: (epsilon, delta)})}, through the services."""
        self.manage(
            "shell",
            "-c",
            "import json\n"
            "from accounts.services import user_create\n"
            "from budgets.services import budget_grant\n"
            "from datasets.models import Dataset\n"
            f"for name, (password, budgets) in json.loads({json.dumps(researchers)!r}).items():\n"
            "    user = user_create(username=name, password=password)\n"
            "    for dataset_name, (epsilon, delta) in budgets.items():\n"
            "        dataset = Dataset.objects.get(name=dataset_name)\n"
            "        budget_grant(user=user, dataset=dataset, epsilon=epsilon, delta=delta)\n",
        )

    def client(self, scenario: str, **arguments: Any) -> dict[str, Any]:
        """Run a lomas-client 0.5.1 scenario: "function" of scenarios_sql.py, or "module:function"
        of another scenarios module in tests/integration (see lomas_client_runner.py)."""
        return self.client_result(self.client_start(scenario, **arguments))

    def client_start(self, scenario: str, **arguments: Any) -> subprocess.Popen:
        """Start a lomas-client scenario (as `client`) without waiting for it: see `client_result`."""
        return subprocess.Popen(
            [str(CLIENT_PYTHON), str(RUNNER), scenario, json.dumps(arguments)],
            env={
                **self.env,
                "LOMAS_CLIENT_APP_URL": self.api,
                "LOMAS_CLIENT_OIDC_DISCOVERY_URL": f"{self.base_url}/o/.well-known/openid-configuration",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def client_result(process: subprocess.Popen) -> dict[str, Any]:
        """What a started scenario returned, once it ends (within 600 s)."""
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.returncode == 0, stderr[-4000:]
        return json.loads(stdout.strip().splitlines()[-1])


def _create_database(name: str) -> None:
    try:
        with psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        _unavailable(f"PostgreSQL: {exc}")
    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis: {exc}")
    if not CLIENT_PYTHON.exists():
        _unavailable("lomas-client virtualenv .venv-client missing (run `make test`)")


_stack_count = itertools.count()


@contextmanager
def start_stack(
    var_dir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    celery_workers: int = 1,
    concurrency: int = 4,
    web_workers: int = 2,
    root: Path = ROOT,
) -> Iterator[LiveStack]:
    """Create a database, load the demo, start Celery worker(s) and gunicorn; stop and drop them on exit.

    ``stack.processes`` holds the workers first (in order), then the web server; `root` is the source
    tree they run (another version of the project, for the version benchmark).
    """
    number = next(_stack_count)
    database = DATABASE_NAME if number == 0 else f"{DATABASE_NAME}_{number}"
    _create_database(database)
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{database}")),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOMAS_VAR_DIR": str(var_dir),
        "LOMAS_DATA_DIR": str(var_dir / "data"),
        "TMPDIR": str(var_dir),
        "PYTHONUNBUFFERED": "1",
        # Queues of their own: stacks of parallel test runs share the Redis database.
        "LOMAS_QUEUE_PREFIX": f"{database}-",
        # Benchmarks submit far more than a researcher would; the limits' own tests set them in extra_env.
        "LOMAS_SUBMIT_LIMIT": "0",
        "LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER": "0",
        **(extra_env or {}),
    }
    stack = LiveStack(base_url=f"http://127.0.0.1:{port}", env=env, root=root)
    stack.manage("migrate", "--noinput")
    # The 2 M-row demo datasets are synthesized only for benchmarks (LOMAS_IT_FULL_DEMO=1).
    stack.manage("lomas_demo_setup", *([] if os.environ.get("LOMAS_IT_FULL_DEMO") else ["--skip-generated"]))
    logs = var_dir / "logs"
    logs.mkdir()
    names = [f"worker{index}" for index in range(celery_workers)]
    for name in names:
        celery = [sys.executable, "-m", "celery", "-A", "lomas", "worker", "--hostname", f"{name}@%h",
                  "--queues", ",".join(f"{database}-{kind}" for kind in ("query", "dummy", "cost")),
                  "--concurrency", str(concurrency), "--loglevel", "INFO",
                  "--without-gossip", "--without-mingle"]  # fmt: skip
        stack.start_process(name, celery, logs)
    # The production web server (the development server drops connections beyond a backlog of 10).
    server = [sys.executable, "-m", "gunicorn", "lomas.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
              str(web_workers), "--threads", "16", "--timeout", "300", "--access-logfile", "-"]  # fmt: skip
    stack.start_process("web", server, logs)
    try:
        _wait_until_ready(stack, [logs / f"{name}.log" for name in names])
        yield stack
    finally:
        for process in stack.processes:
            process.terminate()
        for process in stack.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for name in [*names, "web"]:
            sys.stdout.write(f"\n--- {name} log (tail) ---\n{(logs / f'{name}.log').read_text()[-3000:]}\n")
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The shared live stack: one Celery worker (concurrency 4) and gunicorn (2 workers).

    Status requests wait at most 1 s here, so that tests see jobs in progress promptly.
    """
    with start_stack(tmp_path_factory.mktemp("lomas-var"), extra_env={"LOMAS_STATUS_WAIT_SECONDS": "1"}) as stack:
        yield stack


@pytest.fixture(scope="session")
def bench_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The benchmarks' live stack: as `live_stack`, with the deployed defaults (status requests wait 10 s)."""
    with start_stack(tmp_path_factory.mktemp("lomas-bench")) as stack:
        yield stack


def _wait_until_ready(stack: LiveStack, worker_logs: list[Path]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            web_ready = requests.get(f"{stack.api}/health", timeout=2).status_code == 200
        except requests.RequestException:
            web_ready = False
        if web_ready and all(" ready." in log.read_text() for log in worker_logs):
            return
        time.sleep(0.5)
    raise RuntimeError("the live stack did not start")


# Medians of five; LOMAS_BENCH_QUICK=1 (a smoke test on a busy machine) repeats twice.
BENCH_REPEATS = 2 if os.environ.get("LOMAS_BENCH_QUICK") else 5
BENCH_RESULTS = ROOT / "bench-results.json"


@pytest.fixture(scope="session")
def bench_repeats() -> int:
    """How many times a benchmark repeats a release (the median is reported)."""
    return BENCH_REPEATS


@pytest.fixture(scope="session")
def time_in_process() -> Any:
    """Times (REPEATS of them) of one release run in this process on already-loaded data, as a worker
    runs it: validated, costed and rehearsed on the twin, then run on the data."""
    from datasets.connectors import CachedConnector
    from datasets.connectors.local import PathConnector
    from queries.libraries.base import request_scope, twin_connector

    def _time(adapter_class: Any, body: dict[str, Any], data_file: Path, metadata: dict[str, Any]) -> list[float]:
        loaded = CachedConnector(PathConnector(str(data_file), metadata=metadata), key=f"bench.{data_file.stem}")
        loaded.get_pandas()
        loaded.get_polars()  # loaded once, as a warm worker holds it
        times = []
        for _ in range(BENCH_REPEATS):
            started = time.perf_counter()
            with request_scope():
                twin = adapter_class(body=body, connector=twin_connector(metadata), metadata=metadata)
                twin.validate()
                twin.cost()
                twin.rehearse()
                adapter = adapter_class(body=body, connector=loaded, metadata=metadata)
                adapter.validate()
                adapter.run()
            times.append(time.perf_counter() - started)
        return times

    return _time


def bench_results() -> dict[str, dict[str, Any]]:
    """The results bench-results.json holds so far, by benchmark name."""
    return json.loads(BENCH_RESULTS.read_text()) if BENCH_RESULTS.exists() else {}


def save_bench_result(name: str, entry: dict[str, Any]) -> None:
    """Add (or replace) one benchmark's result in bench-results.json."""
    BENCH_RESULTS.write_text(json.dumps({**bench_results(), name: entry}, indent=2))


@pytest.fixture(scope="session")
def record_benchmark() -> Any:
    """Print a benchmark's medians and ratio, and add them to bench-results.json."""

    def _record(name: str, seen: list[float], in_process: list[float]) -> None:
        server, local = statistics.median(seen), statistics.median(in_process)
        sys.stdout.write(
            f"\n{name:55s} seen {server:8.3f} s   in-process {local:8.3f} s   ratio {server / local:6.2f}\n"
        )
        save_bench_result(name, {"client_seconds": server, "in_process_seconds": local, "ratio": server / local})

    return _record
