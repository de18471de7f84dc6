"""Celery tasks: each fetches by id and calls one service."""

from typing import Any

from celery import shared_task
from celery.signals import worker_process_init

import queries.plan_guard  # noqa: F401 (refuses unpickling while plans are handled, in every worker process)
from queries.libraries import warm_up_all
from queries.services import job_run


@worker_process_init.connect
def warm_up_worker(**_: Any) -> None:
    """Load the DP libraries once per worker process, before its first job."""
    warm_up_all()


@shared_task(name="queries.job_run", ignore_result=True)
def job_run_task(job_uid: str) -> None:
    """Run one submitted job."""
    job_run(job_uid=job_uid)
