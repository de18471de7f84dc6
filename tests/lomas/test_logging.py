"""Structured logs: web and worker records carry the job id and user; JSON lines with the job's outline."""

import io
import json
import logging

import pytest

from lomas import logs
from lomas.logs import ContextFilter, JsonFormatter

pytestmark = pytest.mark.django_db

QUERY = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
         "mechanisms": {}, "postprocess": True}  # fmt: skip


@pytest.fixture
def console():
    """The configured console handler (settings.LOGGING), writing into a buffer."""
    handlers = logging.getLogger("queries").handlers
    handler = next(h for h in handlers if any(isinstance(f, ContextFilter) for f in h.filters))
    buffer = io.StringIO()
    stream, formatter = handler.setStream(buffer), handler.formatter
    yield handler, buffer
    handler.setStream(stream)
    handler.setFormatter(formatter)


@pytest.fixture
def json_records(console):
    handler, buffer = console
    handler.setFormatter(JsonFormatter())
    return lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]


def _one(records, prefix):
    (record,) = [r for r in records if r["message"].startswith(prefix)]
    return record


def test_web_and_worker_records_carry_job_and_user(alice_api, submit, json_records):
    job = submit(alice_api, "smartnoise_sql_query", QUERY).json()["uid"]

    records = json_records()
    submitted = _one(records, f"job {job} submitted")
    assert (submitted["logger"], submitted["job"], submitted["user"]) == ("queries", job, "Alice")
    started = _one(records, f"job {job} started")
    assert {k: started[k] for k in ("job", "user", "library", "kind", "dataset")} == {
        "job": job, "user": "Alice", "library": "smartnoise_sql", "kind": "query", "dataset": "PENGUIN"}  # fmt: skip
    finished = _one(records, f"job {job} finished")
    assert {k: finished[k] for k in ("job", "user", "library", "dataset", "status")} == {
        "job": job, "user": "Alice", "library": "smartnoise_sql", "dataset": "PENGUIN",
        "status": "complete"}  # fmt: skip
    assert finished["duration_seconds"] > 0
    charged = _one(records, "charged Alice on PENGUIN")
    assert (charged["logger"], charged["job"], charged["user"]) == ("budgets", job, "Alice")
    assert logs.current() == {}  # nothing bound outlives the request and the job


def test_failed_job_is_logged_failed(alice_api, submit, json_records):
    job = submit(alice_api, "smartnoise_sql_query", {**QUERY, "epsilon": 50.0}).json()["uid"]

    finished = _one(json_records(), f"job {job} finished")
    assert (finished["status"], finished["user"], finished["level"]) == ("failed", "Alice", "INFO")


def test_plain_lines_end_with_job_and_user(alice_api, submit, console):
    job = submit(alice_api, "estimate_smartnoise_sql_cost", QUERY).json()["uid"]

    lines = console[1].getvalue().splitlines()
    finished = next(line for line in lines if f"job {job} finished" in line)
    assert finished.endswith(f"[job={job} user=Alice]")
    assert " INFO queries " in finished


def test_json_line_holds_the_exception(json_records):
    logger = logging.getLogger("lomas")
    logs.bind(user="Carol")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it broke", extra={"dataset": "IRIS"})

    (record,) = json_records()
    assert (record["message"], record["level"], record["user"], record["dataset"]) == (
        "it broke", "ERROR", "Carol", "IRIS")  # fmt: skip
    assert "ValueError: boom" in record["exception"]
