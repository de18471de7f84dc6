"""Celery tasks: each fetches by id and calls one service."""

import logging
import time
from typing import Any

from celery import Task, shared_task
from celery.signals import task_failure, worker_process_init
from django.db import close_old_connections, connection

import queries.libraries.opendp.guard  # noqa: F401 (refuses unpickling while plans are handled, in every worker process)
from lomas import notify
from queries.libraries import warm_up_all
from queries.models import Job
from queries.services import job_fail_lost, job_run

logger = logging.getLogger("queries")


@worker_process_init.connect
def warm_up_worker(**_: Any) -> None:
    """Load the DP libraries and open the Redis connection once per worker process, before its first job
    (lomas/celery.py opens its database connection)."""
    started = time.monotonic()
    warm_up_all()
    notify.connect()
    logger.info("worker process ready: DP libraries loaded in %.3f s", time.monotonic() - started)


@shared_task(name="queries.job_run", ignore_result=True)
def job_run_task(job_uid: str) -> None:
    """Run one submitted job."""
    job_run(job_uid=job_uid)


@task_failure.connect
def fail_job_of_lost_worker(sender: Task, exception: BaseException, args: list[Any], **_: Any) -> None:
    """A job whose task died unfinished (pool process killed, out of memory, hard time limit) fails (500).

    Celery's worker process sends this signal when its pool process is lost, so the job
    ends at once, charges nothing and frees its user's query slot.
    """
    if sender.name != job_run_task.name:
        return
    if not connection.in_atomic_block:  # the worker's main process may hold a stale connection
        close_old_connections()
    job = Job.objects.select_related("user").filter(uid=args[0]).first()
    if job is not None:
        job_fail_lost(job=job, reason=f"{type(exception).__name__}: {exception}")
