"""Traces: one real query through the API yields one trace from the HTTP request to the ledger write."""

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from datasets.connectors import FRAMES
from lomas import tracing

ROOT = Path(__file__).resolve().parents[2]
QUERY = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
         "mechanisms": {}, "postprocess": True}  # fmt: skip


def _chain(span, by_id):
    names = []
    while span is not None:
        names.append(span.name)
        span = by_id.get(span.parent.span_id) if span.parent else None
    return names


def _print_tree(spans):
    by_parent = {}
    for span in spans:
        by_parent.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def walk(parent, depth):
        for span in sorted(by_parent.get(parent, []), key=lambda s: s.start_time):
            print(f"{'  ' * depth}{span.name}  {(span.end_time - span.start_time) / 1e6:.2f} ms")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)


@pytest.mark.django_db
def test_real_query_is_one_trace_from_http_request_to_ledger_write(alice_api, submit, spans):
    FRAMES.clear()  # the dataset is loaded inside this trace

    accepted = submit(alice_api, "smartnoise_sql_query", QUERY)

    assert accepted.status_code == 202
    job_uid = accepted.json()["uid"]
    finished = spans.get_finished_spans()
    _print_tree(finished)
    by_id = {span.context.span_id: span for span in finished}
    by_name = {span.name: span for span in finished}
    assert {span.context.trace_id for span in finished} == {by_name["job.run"].context.trace_id}
    assert _chain(by_name["ledger.write"], by_id) == [
        "ledger.write",
        "budget.charge",
        "job.run",
        "celery.run queries.job_run",
        "celery.publish",
        "job.submit",
        "POST api/smartnoise_sql_query",
    ]
    for child in ("adapter.validate", "adapter.cost", "adapter.run"):
        assert by_id[by_name[child].parent.span_id].name == "job.run"
        assert by_name[child].attributes["lomas.library"] == "smartnoise_sql"
    assert "job.run" in _chain(by_name["dataset.load"], by_id)
    assert by_name["dataset.load"].attributes["lomas.dataset"] == "PENGUIN"
    http = by_name["POST api/smartnoise_sql_query"]
    assert http.parent is None
    assert http.kind == trace.SpanKind.SERVER
    assert http.attributes["http.response.status_code"] == 202
    assert http.attributes["http.route"] == "api/smartnoise_sql_query"
    assert http.attributes["lomas.user"] == "Alice"
    expected = {"lomas.user": "Alice", "lomas.dataset": "PENGUIN", "lomas.library": "smartnoise_sql",
                "lomas.job": job_uid, "lomas.kind": "query"}  # fmt: skip
    for name in ("job.submit", "job.run"):
        assert {key: by_name[name].attributes[key] for key in expected} == expected
    charge = by_name["budget.charge"].attributes
    assert (charge["lomas.user"], charge["lomas.dataset"], charge["lomas.job"]) == ("Alice", "PENGUIN", job_uid)


@pytest.mark.django_db
def test_http_span_continues_an_incoming_traceparent(alice_api, spans):
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    alice_api.post(
        "/api/get_remaining_budget",
        {"dataset_name": "PENGUIN"},
        format="json",
        HTTP_TRACEPARENT=f"00-{parent_trace}-00f067aa0ba902b7-01",
    )

    (http,) = spans.get_finished_spans()
    assert http.name == "POST api/get_remaining_budget"
    assert format(http.context.trace_id, "032x") == parent_trace
    assert format(http.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_worker_span_is_a_child_of_the_publisher_through_message_headers(spans):
    """A real worker thread consumes from a real (in-memory) broker: only the message headers link the spans."""
    app = Celery("trace-propagation", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = False
    seen = {}

    @app.task(name="tests.record_span")
    def record_span():
        seen["span"] = trace.get_current_span().get_span_context()
        seen["thread"] = threading.get_ident()

    with (
        start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10),
        tracing.span("publisher") as publisher,
    ):
        tracing.later_in_span("celery.publish", lambda: record_span.apply_async().get(timeout=10))()

    assert seen["thread"] != threading.get_ident()
    finished = {span.name: span for span in spans.get_finished_spans()}
    consumer = finished["celery.run tests.record_span"]
    assert consumer.kind == trace.SpanKind.CONSUMER
    assert consumer.parent.span_id == finished["celery.publish"].context.span_id
    assert consumer.context.trace_id == publisher.get_span_context().trace_id
    assert seen["span"].span_id == consumer.context.span_id


EXPORTING_PROCESS = """
from opentelemetry import trace
import lomas  # configures tracing from the environment
from lomas import tracing
with tracing.span("job.run", job="j-1", user="Alice"):
    pass
trace.get_tracer_provider().shutdown()  # flushes the batch
"""


def test_spans_go_to_the_otlp_http_endpoint_of_the_environment(tmp_path):
    received = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "DJANGO_DEBUG": "true", "LOMAS_VAR_DIR": str(tmp_path), "OTEL_SERVICE_NAME": "lomas-worker",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}"}  # fmt: skip
    try:
        subprocess.run([sys.executable, "-c", EXPORTING_PROCESS], cwd=ROOT, env=env, check=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()

    ((path, content_type, body),) = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    (resource_spans,) = ExportTraceServiceRequest.FromString(body).resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "lomas-worker"
    (span,) = [span for scope in resource_spans.scope_spans for span in scope.spans]
    assert span.name == "job.run"
    assert {a.key: a.value.string_value for a in span.attributes} == {"lomas.job": "j-1", "lomas.user": "Alice"}


def test_no_endpoint_no_tracer_provider(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(DJANGO_DEBUG="true", LOMAS_VAR_DIR=str(tmp_path))
    code = "import lomas; from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert done.stdout.strip() == "ProxyTracerProvider"
