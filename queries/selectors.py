"""Reads on jobs and archives."""

from uuid import UUID

from django.http import Http404

from accounts.models import User
from datasets.models import Dataset
from lomas.errors import JOB_OF_OTHER_USER, UnauthorizedAccess
from queries.models import Job, QueryArchive


def job_get_for_user(*, uid: UUID, user: User) -> Job:
    """The job, 404 if unknown, 403 if it belongs to someone else (spec §1.5)."""
    job = Job.objects.select_related("user").filter(uid=uid).first()
    if job is None:
        raise Http404("This job does not exist.")
    if job.user_id != user.pk:
        raise UnauthorizedAccess(JOB_OF_OTHER_USER.format(user=user.username, uid=uid))
    return job


def archive_list_for_user(*, user: User, dataset: Dataset) -> list[dict]:
    """The user's archived queries on a dataset, oldest first, as §2.6 records."""
    return [
        archive_to_wire(archive)
        for archive in QueryArchive.objects.filter(user=user, dataset=dataset).order_by("created_at", "pk")
    ]


def archive_to_wire(archive: QueryArchive) -> dict:
    """The §2.6 record (with the old misspelt library key too, as lomas ≤0.4 clients read it)."""
    return {
        "user_name": archive.user_name,
        "dataset_name": archive.dataset_name,
        "dp_library": archive.dp_library,
        "dp_librairy": archive.dp_library,
        "client_input": archive.client_input,
        "response": archive.response,
        "timestamp": archive.created_at.timestamp(),
    }


def job_to_wire(job: Job) -> dict:
    """The Job JSON lomas-client validates."""
    return {
        "uid": str(job.uid),
        "requested_by": job.user.username,
        "status": job.status,
        "result": job.result,
        "error": job.error,
        "status_code": job.status_code,
    }
