"""The Celery application: query jobs run in worker processes."""

import logging
import os
import threading
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

from lomas import logs, metrics, tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lomas.settings")

app = Celery("lomas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Traces, metrics and log context of web and worker processes (see README, "Observability").
tracing.configure()
tracing.instrument_celery()
metrics.instrument_celery()
logs.instrument_celery()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task: Task | None = None, **_: Any) -> None:
    """Before and after each task, close the database connections that are unusable or older than
    DATABASE_CONN_MAX_AGE, as Django does around each request; Celery's own closing of every
    connection around every task is off (CELERY_DB_REUSE_MAX), so a job reuses its process's
    connection. An eager task runs inside its caller's request and transaction: left alone."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def open_database_connection_in_each_process(**_: Any) -> None:
    """Each pool process opens its database connection as it starts, so that its first job does not wait
    for one. Connected to worker_process_init only now, once Celery's Django fixup has connected its own
    handler there (it closes the connections a forked process inherited), so that it runs after it."""
    worker_process_init.connect(_open_database_connection, weak=False, dispatch_uid="lomas.open_database_connection")


def _open_database_connection(**_: Any) -> None:
    from django.db import DatabaseError, connection

    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        logging.getLogger("lomas").warning("worker process: database not reachable yet: %s", exc)


@worker_process_init.connect
def prepare_hot_datasets(**_: Any) -> None:
    """Each worker process prepares the hot datasets (LOMAS_HOT_DATASETS) beside its first jobs.

    In a thread, with its own database connection: the process must answer Celery's start-up
    check within seconds, and a dataset's first conversion on a machine takes longer (the other
    processes wait for it on the file's lock, then open it).
    """
    from django.conf import settings

    if settings.LOMAS_HOT_DATASETS:
        threading.Thread(target=_prepare_hot_datasets, name="lomas-prepare-hot", daemon=True).start()


def _prepare_hot_datasets() -> None:
    from django.db import connection

    from queries.services import dataset_prepare_hot

    try:
        dataset_prepare_hot()
    finally:
        connection.close()
