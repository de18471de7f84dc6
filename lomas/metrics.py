"""Prometheus metrics of lomas-django, shared by the web and worker processes.

With PROMETHEUS_MULTIPROC_DIR set (before any process starts), every web and worker
process on a host writes its samples to files in that directory and a scrape of
`/metrics` on any web process merges them all (prometheus_client's multiprocess mode).
Without it, `/metrics` reports the answering process only (development, tests).
"""

import logging
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from celery import current_app
from celery.signals import worker_init, worker_process_shutdown
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from kombu.exceptions import ChannelError
from opentelemetry import trace
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger("lomas")

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
JOB_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))

if os.environ.get(MULTIPROC_DIR_VARIABLE):  # sample files are opened as the metrics below are created
    Path(os.environ[MULTIPROC_DIR_VARIABLE]).mkdir(parents=True, exist_ok=True)

HTTP_REQUESTS = Counter(
    "lomas_http_requests",
    "HTTP requests answered, by URL route name, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "lomas_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL route name and method.",
    ["route", "method"],
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "lomas_http_requests_in_progress",
    "HTTP requests being answered by the live web processes.",
    multiprocess_mode="livesum",
)
JOBS = Counter(
    "lomas_jobs",
    "Jobs run by the workers, by DP library, kind (query, dummy, cost) and final status.",
    ["library", "kind", "status"],
)
JOB_SECONDS = Histogram(
    "lomas_job_duration_seconds",
    "Time a worker spent on a job, by DP library, kind and final status.",
    ["library", "kind", "status"],
    buckets=JOB_SECONDS_BUCKETS,
)
EPSILON_SPENT = Counter(
    "lomas_budget_epsilon_spent",
    "Epsilon charged to budgets by committed real queries, by dataset.",
    ["dataset"],
)
DELTA_SPENT = Counter(
    "lomas_budget_delta_spent",
    "Delta charged to budgets by committed real queries, by dataset.",
    ["dataset"],
)
DATASET_CACHE_EVENTS = Counter(
    "lomas_dataset_cache_events",
    "Dataset cache lookups and removals in worker processes, by dataset and event.",
    ["dataset", "event"],
)
DATASET_LOAD_SECONDS = Histogram(
    "lomas_dataset_load_seconds",
    "Time to load a dataset into a worker's cache, by dataset.",
    ["dataset"],
)


def record_dataset_cache(dataset: str, event: str) -> None:
    """Count a cache event: "hit", "miss", "eviction" or "invalidation" (also an event of the current span)."""
    DATASET_CACHE_EVENTS.labels(dataset=dataset, event=event).inc()
    trace.get_current_span().add_event("dataset.cache", {"lomas.dataset": dataset, "lomas.cache_event": event})


def observe_dataset_load(dataset: str, seconds: float) -> None:
    """Record how long loading a dataset took."""
    DATASET_LOAD_SECONDS.labels(dataset=dataset).observe(seconds)


def observe_http_request(*, route: str, method: str, status: int, seconds: float) -> None:
    """Count an answered HTTP request and its latency."""
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    HTTP_REQUEST_SECONDS.labels(route=route, method=method).observe(seconds)


def observe_job(*, library: str, kind: str, status: str, seconds: float) -> None:
    """Count a job a worker finished (complete or failed) and its duration."""
    JOBS.labels(library=library, kind=kind, status=status).inc()
    JOB_SECONDS.labels(library=library, kind=kind, status=status).observe(seconds)


def record_budget_spent(*, dataset: str, epsilon: float | Decimal, delta: float | Decimal) -> None:
    """Add a charge to the amounts spent on a dataset once the current transaction commits (never if it rolls back)."""

    def record() -> None:
        EPSILON_SPENT.labels(dataset=dataset).inc(float(epsilon))
        DELTA_SPENT.labels(dataset=dataset).inc(float(delta))

    transaction.on_commit(record)


class QueueDepthCollector(Collector):
    """Jobs waiting in each job queue, read from the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            return
        depths = queue_depths()
        up = GaugeMetricFamily("lomas_broker_up", "Whether the job broker answered the last scrape.")
        up.add_metric([], 0 if depths is None else 1)
        yield up
        if depths is None:
            return
        family = GaugeMetricFamily(
            "lomas_queue_depth", "Jobs waiting in a broker queue, by queue and job kind.", labels=["queue", "kind"]
        )
        for kind, queue in settings.LOMAS_JOB_QUEUES.items():
            family.add_metric([queue, kind], depths[queue])
        yield family


def queue_depths(broker_url: str | None = None) -> dict[str, int] | None:
    """Messages waiting in each job queue (Redis: list lengths; embedded broker: files), None if unreachable.

    The broker is the Celery app's unless `broker_url` names another.
    """
    try:
        with current_app.connection_for_read(broker_url) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            channel = connection.default_channel
            return {queue: _queue_depth(channel, queue) for queue in settings.LOMAS_JOB_QUEUES.values()}
    except Exception:
        logger.warning("metrics: the job broker did not answer", exc_info=True)
        return None


def _queue_depth(channel: object, queue: str) -> int:
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count  # type: ignore[attr-defined]
    except ChannelError:  # a queue never used yet (Redis keeps no empty list)
        return 0


def multiprocess_dir() -> Path | None:
    """The directory of multiprocess samples, if this host runs in multiprocess mode."""
    value = os.environ.get(MULTIPROC_DIR_VARIABLE)
    return Path(value) if value else None


def exposition() -> bytes:
    """The text exposition of every metric of this host, and of the job queues."""
    directory = multiprocess_dir()
    if directory is None:
        samples = generate_latest(REGISTRY)
    else:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(directory))
        samples = generate_latest(registry)
    queues = CollectorRegistry()
    queues.register(QueueDepthCollector())
    return samples + generate_latest(queues)


_SAMPLE_FILE = re.compile(r"^.+_(\d+)\.db$")


def prune_dead_process_files(directory: Path | None = None) -> int:
    """At a service's start: remove the sample files of processes that no longer run; returns how many.

    The directory is shared by the web and worker processes of a host, so a service
    starting (or restarting) leaves the files of the other services' live processes.
    """
    directory = directory or multiprocess_dir()
    if directory is None:
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for path in directory.glob("*.db"):
        match = _SAMPLE_FILE.match(path.name)
        if match and not _process_runs(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def mark_process_dead(pid: int) -> None:
    """After a web or worker child exits: drop its share of the live gauges."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(pid, path=str(directory))


def instrument_celery() -> None:
    """A worker's main process prunes stale sample files at start; each pool process drops its live gauges on exit."""
    worker_init.connect(_prune_at_worker_start, weak=False, dispatch_uid="lomas.metrics.worker_init")
    worker_process_shutdown.connect(_mark_pool_process_dead, weak=False, dispatch_uid="lomas.metrics.shutdown")


def _prune_at_worker_start(**_: Any) -> None:
    prune_dead_process_files()
    start_worker_exporter()


def start_worker_exporter() -> WSGIServer | None:
    """Serve the host's samples at LOMAS_WORKER_METRICS_ADDRESS:LOMAS_WORKER_METRICS_PORT (if set), for a host
    that runs workers and no web process; returns the server."""
    port = settings.LOMAS_WORKER_METRICS_PORT
    if not port:
        return None
    directory = multiprocess_dir()
    if directory is None:
        raise ImproperlyConfigured(f"LOMAS_WORKER_METRICS_PORT needs {MULTIPROC_DIR_VARIABLE} (pool processes).")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    server, _ = start_http_server(port, addr=settings.LOMAS_WORKER_METRICS_ADDRESS, registry=registry)
    logger.info("worker metrics served on %s:%s", settings.LOMAS_WORKER_METRICS_ADDRESS, port)
    return server


def _mark_pool_process_dead(pid: int, **_: Any) -> None:
    mark_process_dead(pid)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
