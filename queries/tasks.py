"""Celery tasks: each fetches by id and calls one service."""

from celery import shared_task

from queries.services import job_run


@shared_task(name="queries.job_run", ignore_result=True)
def job_run_task(job_uid: str) -> None:
    """Run one submitted job."""
    job_run(job_uid=job_uid)
