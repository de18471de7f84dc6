"""Reads on the service itself: are the database, the job broker and the workers up."""

import logging
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.db import connection

logger = logging.getLogger("lomas")

# How long the overview waits for workers to answer, in seconds.
WORKER_PING_TIMEOUT = 2.0


@dataclass(frozen=True)
class ServiceHealth:
    """What the overview page shows: each part up or down, and how many workers answered."""

    database: bool
    broker: bool
    workers: bool
    worker_count: int
    eager: bool


def database_ok() -> bool:
    """The database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return False
    return True


def broker_ok() -> bool:
    """The job broker accepts a connection (always true when jobs run in the web process)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return True
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:
        return False
    return True


def worker_count(*, timeout: float = WORKER_PING_TIMEOUT) -> int:
    """How many Celery workers consuming this server's job queues answer within `timeout` seconds.

    Workers of other servers sharing the broker are not counted; 0 if the broker is unreachable.
    """
    try:
        replies = current_app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:
        logger.warning("asking the workers for their queues failed: %s", type(exc).__name__)
        return 0
    ours = set(settings.LOMAS_JOB_QUEUES.values())
    return sum(1 for queues in replies.values() if ours & {queue.get("name") for queue in queues or []})


def service_health() -> ServiceHealth:
    """Database, broker and workers; without a broker (eager jobs) the web process is the worker."""
    eager = bool(settings.CELERY_TASK_ALWAYS_EAGER)
    database, broker = database_ok(), broker_ok()
    workers = 0 if eager or not broker else worker_count()
    return ServiceHealth(
        database=database, broker=broker, workers=eager or workers > 0, worker_count=workers, eager=eager
    )
