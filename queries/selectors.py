"""Reads on jobs and archives."""

from datetime import timedelta
from uuid import UUID

from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from datasets.models import Dataset
from lomas.errors import JOB_OF_OTHER_USER, UnauthorizedAccess
from queries.libraries import ADAPTERS, get_adapter
from queries.models import Job, QueryArchive


def job_get_for_user(*, uid: UUID, user: User) -> Job:
    """The job, 404 if unknown or already collected, 403 if it belongs to someone else (spec §1.5)."""
    job = Job.objects.select_related("user").filter(uid=uid, collected_at=None).first()
    if job is None:
        raise Http404("This job does not exist.")
    if job.user_id != user.pk:
        raise UnauthorizedAccess(JOB_OF_OTHER_USER.format(user=user.username, uid=uid))
    return job


def job_is_in_progress(*, uid: UUID) -> bool:
    """Whether the job is still in progress: one read of its status column by primary key."""
    return Job.objects.filter(uid=uid).values_list("status", flat=True).first() == Job.Status.IN_PROGRESS


def archive_list_for_user(*, user: User, dataset: Dataset, libraries: list[str] | None = None) -> list[dict]:
    """The user's archived queries on a dataset, oldest first, as §2.6 records.

    By default only libraries whose adapter is `in_previous_queries` are listed:
    lomas-client 0.5.1 raises on any other `dp_library` (spec §2.6). Other clients name
    the libraries they read. Charged failures (archived with an `error`) are not listed:
    the client decodes every record as a query result.
    """
    if libraries is None:
        libraries = [library for library in ADAPTERS if get_adapter(library).in_previous_queries]
    archives = QueryArchive.objects.filter(user=user, dataset=dataset, dp_library__in=libraries).exclude(
        response__has_key="error"
    )
    return [archive_to_wire(archive) for archive in archives.order_by("created_at", "pk")]


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


def archive_list_by_user_name(*, user_name: str) -> list[dict]:
    """Every archived query of a user, on all datasets, oldest first, as §2.6 records."""
    return [
        archive_to_wire(archive)
        for archive in QueryArchive.objects.filter(user_name=user_name).order_by("created_at", "pk")
    ]


def archive_list() -> list[dict]:
    """Every archived query, oldest first, as §2.6 records."""
    return [archive_to_wire(archive) for archive in QueryArchive.objects.order_by("created_at", "pk")]


def job_count_in_flight(*, user: User) -> int:
    """The user's jobs in progress (queued or running), of every kind; a job past its lease has lost its worker."""
    alive = Q(lease_until__isnull=True) | Q(lease_until__gt=timezone.now())
    return Job.objects.filter(alive, user=user, status=Job.Status.IN_PROGRESS).count()


def job_counts_recent(*, hours: int = 24) -> dict[str, int]:
    """Jobs in progress now, and jobs that failed within the last `hours` hours."""
    since = timezone.now() - timedelta(hours=hours)
    return {
        "in_progress": Job.objects.filter(status=Job.Status.IN_PROGRESS).count(),
        "failed": Job.objects.filter(status=Job.Status.FAILED, finished_at__gte=since).count(),
    }
