"""`make run`'s server: web and embedded-broker worker in the foreground, a query end to end, clean stop."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serves_queries_with_the_embedded_broker_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "DJANGO_DEBUG": "true", "LOMAS_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "LOMAS_DATA_DIR"):
        env.pop(key, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        [*manage, "lomas_demo_setup", "--skip-generated"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    port = _free_port()
    log = (tmp_path / "run.log").open("w")
    server = subprocess.Popen(
        [*manage, "runlomas", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the web server and worker are found by it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/api/live", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        token = requests.post(
            f"{base}/o/token/",
            data={"grant_type": "password", "username": "Bob", "password": "bob", "client_id": "lomas_client"},
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"dataset_name": "IRIS", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
                "mechanisms": {}}  # fmt: skip
        uid = requests.post(f"{base}/api/estimate_smartnoise_sql_cost", json=body, headers=headers, timeout=10).json()
        deadline = time.monotonic() + 60
        # the status route waits up to LOMAS_STATUS_WAIT_SECONDS (10) for the job: the client waits longer
        while (status := requests.get(f"{base}/api/status/{uid['uid']}", headers=headers, timeout=30).json())[
            "status"
        ] == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status["status"] == "complete"
        assert status["result"]["epsilon"] == 1.0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert "Stopped." in (tmp_path / "run.log").read_text()
    deadline = time.monotonic() + 20
    while (leftovers := subprocess.run(["pgrep", "-g", str(server.pid)], capture_output=True, text=True).stdout) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert leftovers == "", "web server or worker processes outlived SIGTERM"
