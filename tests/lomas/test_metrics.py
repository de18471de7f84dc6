"""Prometheus metrics at /metrics: access, request/job/budget/cache samples, queue depths, several processes."""

import os
import socket
import subprocess
import sys
import time
import uuid
from ipaddress import ip_network
from pathlib import Path

import pytest
import redis
import requests
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from budgets.models import LedgerEntry
from datasets.connectors import FRAMES
from lomas import metrics
from lomas.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("LOMAS_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
QUERY = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
         "mechanisms": {}, "postprocess": True}  # fmt: skip


def parse(text):
    """{(sample name, sorted labels): value} of an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client=None, **headers):
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_answer_allowed_addresses_and_the_token_only(settings):
    assert Client().get("/metrics").status_code == 200  # the test client is 127.0.0.1, allowed by default
    settings.LOMAS_METRICS_ALLOWED_NETWORKS = [ip_network("10.0.0.0/8")]
    settings.LOMAS_METRICS_TOKEN = "scrape-secret"
    client = Client(REMOTE_ADDR="192.0.2.7")
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").post("/metrics").status_code == 405


@pytest.mark.django_db
def test_real_query_counts_request_job_cache_and_spent_budget(alice_api, submit):
    FRAMES.clear()
    before = scrape()

    accepted = submit(alice_api, "smartnoise_sql_query", QUERY)
    status = alice_api.get(f"/api/status/{accepted.json()['uid']}")

    assert status.json()["status"] == "complete"
    after = scrape()
    charge = LedgerEntry.objects.get(kind=LedgerEntry.Kind.CHARGE)

    def increase(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    post = {"route": "smartnoise_sql_query", "method": "POST"}
    assert increase("lomas_http_requests_total", **post, status="202") == 1
    assert increase("lomas_http_request_duration_seconds_count", **post) == 1
    assert increase("lomas_http_requests_total", route="status", method="GET", status="200") == 1
    assert not [key for key in after if accepted.json()["uid"] in str(key)]  # routes, never raw paths
    job = {"library": "smartnoise_sql", "kind": "query", "status": "complete"}
    assert increase("lomas_jobs_total", **job) == 1
    assert increase("lomas_job_duration_seconds_count", **job) == 1
    assert increase("lomas_budget_epsilon_spent_total", dataset="PENGUIN") == pytest.approx(float(charge.epsilon))
    assert increase("lomas_budget_delta_spent_total", dataset="PENGUIN") == pytest.approx(float(charge.delta))
    misses = increase("lomas_dataset_cache_events_total", dataset="PENGUIN", event="miss")
    assert misses >= 1  # the frame (and what the library builds on it) loaded once each
    assert increase("lomas_dataset_load_seconds_count", dataset="PENGUIN") == misses


@pytest.mark.django_db
def test_failed_query_counts_a_failed_job_and_spends_nothing(alice_api, submit):
    before = scrape()

    submit(alice_api, "smartnoise_sql_query", {**QUERY, "epsilon": 50.0})

    after = scrape()
    failed = {"library": "smartnoise_sql", "kind": "query", "status": "failed"}
    assert value(after, "lomas_jobs_total", **failed) - value(before, "lomas_jobs_total", **failed) == 1
    spent = ("lomas_budget_epsilon_spent_total", (("dataset", "PENGUIN"),))
    assert after.get(spent, 0.0) == before.get(spent, 0.0)


@pytest.fixture
def private_queues(settings):
    """Job queues of this test only, on a broker that is not eager."""
    prefix = f"metrics-test-{uuid.uuid4().hex[:8]}-"
    settings.LOMAS_JOB_QUEUES = {kind: f"{prefix}{kind}" for kind in ("query", "dummy", "cost")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    return settings.LOMAS_JOB_QUEUES


def _publish_and_purge(queues, counts, broker_url=None):
    with celery_app.connection_for_write(broker_url) as connection:
        for kind, count in counts.items():
            for _ in range(count):
                celery_app.send_task("queries.job_run", args=["x"], queue=queues[kind], connection=connection)
        yield
        channel = connection.default_channel
        for queue in queues.values():
            channel.queue_purge(queue)


def test_queue_depth_reads_the_embedded_broker_at_scrape_time(private_queues):
    for _ in _publish_and_purge(private_queues, {"query": 2, "cost": 1}):
        samples = scrape()
        depth = {kind: value(samples, "lomas_queue_depth", queue=queue, kind=kind)
                 for kind, queue in private_queues.items()}  # fmt: skip
        assert depth == {"query": 2, "dummy": 0, "cost": 1}
        assert value(samples, "lomas_broker_up") == 1


def test_queue_depth_reads_redis_list_lengths(private_queues):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    for _ in _publish_and_purge(private_queues, {"dummy": 3}, broker_url=REDIS_URL):
        assert metrics.queue_depths(broker_url=REDIS_URL) == {
            private_queues["query"]: 0, private_queues["dummy"]: 3, private_queues["cost"]: 0}  # fmt: skip


def test_unreachable_broker_is_reported_down(private_queues):
    assert metrics.queue_depths(broker_url="redis://127.0.0.1:1/0") is None


WRITER = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lomas.settings")
from lomas import metrics
metrics.observe_job(library="opendp", kind="cost", status="complete", seconds=0.5)
metrics.HTTP_REQUESTS_IN_PROGRESS.inc()
print(os.getpid())
"""


def _write_samples_in_a_process(tmp_path, directory):
    env = {**os.environ, "DJANGO_DEBUG": "true", "LOMAS_VAR_DIR": str(tmp_path)}
    env[metrics.MULTIPROC_DIR_VARIABLE] = str(directory)
    done = subprocess.run([sys.executable, "-c", WRITER], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_samples_of_several_processes_are_merged_and_dead_ones_pruned(tmp_path, monkeypatch):
    directory = tmp_path / "prometheus"
    pids = [_write_samples_in_a_process(tmp_path, directory) for _ in range(2)]
    monkeypatch.setenv(metrics.MULTIPROC_DIR_VARIABLE, str(directory))
    job = {"library": "opendp", "kind": "cost", "status": "complete"}

    samples = scrape()
    assert value(samples, "lomas_jobs_total", **job) == 2
    assert value(samples, "lomas_job_duration_seconds_sum", **job) == 1.0
    assert value(samples, "lomas_http_requests_in_progress") == 2

    metrics.mark_process_dead(pids[0])
    assert value(scrape(), "lomas_http_requests_in_progress") == 1

    live = directory / f"counter_{os.getpid()}.db"
    live.write_bytes((directory / f"counter_{pids[1]}.db").read_bytes())
    assert metrics.prune_dead_process_files(directory) == 5  # counters, histograms, the gauge pids[1] left
    assert sorted(path.name for path in directory.glob("*.db")) == [live.name]


def test_a_worker_only_host_serves_its_samples_over_http(tmp_path, monkeypatch, settings):
    directory = tmp_path / "prometheus"
    _write_samples_in_a_process(tmp_path, directory)
    settings.LOMAS_WORKER_METRICS_PORT = port = _free_port()
    with pytest.raises(ImproperlyConfigured):
        metrics.start_worker_exporter()  # pool processes need the shared directory
    monkeypatch.setenv(metrics.MULTIPROC_DIR_VARIABLE, str(directory))

    server = metrics.start_worker_exporter()
    try:
        samples = parse(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    finally:
        server.shutdown()
        server.server_close()
    assert value(samples, "lomas_jobs_total", library="opendp", kind="cost", status="complete") == 1


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _process_runs(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stale_gauge_files(directory):
    """Live-gauge files of processes that exited, once the master had the time to reap the last one."""
    deadline = time.monotonic() + 15
    while True:
        stale = [path.name for path in directory.glob("gauge_livesum_*.db")
                 if not _process_runs(int(path.stem.rsplit("_", 1)[1]))]  # fmt: skip
        if not stale or time.monotonic() > deadline:
            return stale
        time.sleep(0.2)


@pytest.mark.slow
def test_any_gunicorn_worker_reports_every_worker_of_the_host(tmp_path):
    """gunicorn with 2 workers that are replaced every 10 requests: each scrape counts all requests served."""
    directory = tmp_path / "prometheus"
    port = _free_port()
    env = {**os.environ, "DJANGO_DEBUG": "true", "LOMAS_VAR_DIR": str(tmp_path), "CELERY_TASK_ALWAYS_EAGER": "true",
           metrics.MULTIPROC_DIR_VARIABLE: str(directory)}  # fmt: skip
    directory.mkdir()
    (directory / "counter_999999999.db").write_bytes(b"")  # left by a process of an earlier run
    command = [sys.executable, "-m", "gunicorn", "lomas.wsgi", "-c", "python:lomas.gunicorn_conf", "--bind",
               f"127.0.0.1:{port}", "--workers", "2", "--max-requests", "10"]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{base}/api/health", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
            time.sleep(0.3)
        assert not (directory / "counter_999999999.db").exists()  # pruned when the master started
        for _ in range(24):
            assert requests.get(f"{base}/api/live", timeout=30).status_code == 200

        counts = []
        for _ in range(4):
            samples = parse(requests.get(f"{base}/metrics", timeout=30).text)
            counts.append(value(samples, "lomas_http_requests_total", route="live", method="GET", status="200"))
        writers = {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("counter_*.db")}
        stale_gauges = _stale_gauge_files(directory)
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert counts == [24, 24, 24, 24]  # whichever worker answered
    assert len(writers) >= 3  # workers were replaced: the samples of exited ones still count
    assert stale_gauges == []  # the master dropped the live gauges of the workers that exited
