"""Celery tasks: each fetches by id and calls one service."""

from celery import shared_task

import queries.plan_guard  # noqa: F401 (refuses unpickling while plans are handled, in every worker process)
from queries.services import job_run


@shared_task(name="queries.job_run", ignore_result=True)
def job_run_task(job_uid: str) -> None:
    """Run one submitted job."""
    job_run(job_uid=job_uid)
