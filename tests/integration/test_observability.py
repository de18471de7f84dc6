"""Observability of a live stack (gunicorn, a Celery worker on Redis, PostgreSQL): one query is one trace
across the web and worker processes, /metrics counts the worker's jobs, the worker logs JSON lines."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import start_stack

QUERY = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
         "mechanisms": {}, "postprocess": True}  # fmt: skip


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver keeping the spans it is sent."""

    spans: list = []

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        for resource_spans in request.resource_spans:
            for scope in resource_spans.scope_spans:
                self.spans.extend(scope.spans)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _samples(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _trace_to_ledger_write(job_uid: str, deadline: float) -> list:
    """The spans from the job's ledger write up to the root, once every process exported them."""
    while True:
        by_id = {span.span_id: span for span in _Collector.spans}
        runs = [span.trace_id for span in by_id.values() if span.name == "job.run" and _job_of(span) == job_uid]
        chain = [span for span in by_id.values() if span.name == "ledger.write" and span.trace_id in runs][:1]
        while chain and chain[-1].parent_span_id in by_id:
            chain.append(by_id[chain[-1].parent_span_id])
        if (chain and not chain[-1].parent_span_id) or time.monotonic() > deadline:
            return chain
        time.sleep(0.3)


def _job_of(span: object) -> str:
    return {a.key: a.value.string_value for a in span.attributes}.get("lomas.job", "")


def test_one_query_is_one_trace_and_counted_across_processes(tmp_path_factory, collector):
    var_dir = tmp_path_factory.mktemp("lomas-observability")
    extra_env = {
        "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "prometheus"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "LOMAS_LOG_FORMAT": "json",
    }
    with start_stack(var_dir, extra_env=extra_env, celery_workers=1, concurrency=2, web_workers=2) as stack:
        token = stack.token("Dr.Antartica", "dr.antartica")
        uid = stack.post("smartnoise_sql_query", token, QUERY).json()["uid"]
        result = stack.wait_job(uid, token).json()
        samples = _samples(requests.get(f"{stack.base_url}/metrics", timeout=30).text)
        chain = _trace_to_ledger_write(uid, time.monotonic() + 60)
        worker_log = (var_dir / "logs" / "worker0.log").read_text()

    assert result["status"] == "complete"
    # Counted in a Celery pool process, reported by whichever gunicorn worker answered.
    job = (("kind", "query"), ("library", "smartnoise_sql"), ("status", "complete"))
    assert samples[("lomas_jobs_total", job)] == 1
    assert samples[("lomas_budget_epsilon_spent_total", (("dataset", "PENGUIN"),))] == result["result"]["epsilon"]
    assert samples[("lomas_broker_up", ())] == 1
    depths = {labels: depth for (name, labels), depth in samples.items() if name == "lomas_queue_depth"}
    assert sorted(dict(labels)["kind"] for labels in depths) == ["cost", "dummy", "query"]

    assert [span.name for span in chain] == [
        "ledger.write",
        "budget.charge",
        "job.run",
        "celery.run queries.job_run",  # in the worker process, linked through the message headers
        "celery.publish",
        "job.submit",
        "POST api/smartnoise_sql_query",  # in a web process
    ]
    assert len({span.trace_id for span in chain}) == 1
    attributes = {a.key: a.value.string_value for a in chain[2].attributes}
    assert (attributes["lomas.job"], attributes["lomas.user"], attributes["lomas.dataset"]) == (
        uid, "Dr.Antartica", "PENGUIN")  # fmt: skip

    records = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    finished = [r for r in records if r["message"].startswith(f"job {uid} finished")]
    assert [(r["job"], r["user"], r["status"], r["library"]) for r in finished] == [
        (uid, "Dr.Antartica", "complete", "smartnoise_sql")]  # fmt: skip
    assert finished[0]["trace_id"] == chain[0].trace_id.hex()
