"""The query life cycle: submit a job, run it in a worker, hand its result back once.

A real query runs strictly as: claim the user's query slot → cost → budget
pre-check → run → one transaction that locks the budget row, re-checks, charges,
archives and completes the job → release the slot (always). Dummy queries and cost
estimates never lock, charge or archive (spec §2).
"""

import logging
import time
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import Actor, audit_record, user_claim_query_slot, user_release_query_slot
from budgets.selectors import budget_check_affordable
from budgets.services import budget_charge
from datasets.connectors import get_connector, get_dummy_connector
from datasets.connectors.base import DataConnector
from datasets.models import Dataset
from lomas.errors import InternalServerError, LomasError
from queries.libraries import get_adapter
from queries.libraries.base import Cost, DPAdapter
from queries.models import Job, QueryArchive
from queries.selectors import job_to_wire
from queries.time_limit import JobTimeLimitExceeded, TimeLimitReached, job_time_limit

logger = logging.getLogger("queries")


@transaction.atomic
def job_submit(*, user: User, dataset: Dataset, library: str, kind: str, request_body: dict[str, Any]) -> Job:
    """Record a job and queue it for a worker once the job row is committed."""
    from queries.tasks import job_run_task

    job = Job.objects.create(user=user, dataset=dataset, library=library, kind=kind, request=request_body)
    queue = settings.LOMAS_JOB_QUEUES[kind]
    uid = str(job.uid)
    transaction.on_commit(lambda: job_run_task.apply_async(args=[uid], queue=queue))
    logger.info("job %s submitted: %s %s by %s on %s", uid, library, kind, user.username, dataset.name)
    return job


def job_run(*, job_uid: UUID | str) -> None:
    """Run a job once (a redelivered message finds it claimed and does nothing)."""
    if not Job.objects.filter(uid=job_uid, started_at__isnull=True).update(started_at=timezone.now()):
        logger.warning("job %s already started or gone; skipped", job_uid)
        return
    job = Job.objects.select_related("user", "dataset").get(uid=job_uid)
    started = time.monotonic()
    try:
        get_adapter(job.library).warm_up()  # outside the time limit: never interrupt an import
        if job.kind == Job.Kind.QUERY:
            _run_query(job)
        else:
            _run_without_charge(job)
    except LomasError as exc:
        job_fail(job=job, error=exc)
    except (TimeLimitReached, SoftTimeLimitExceeded):
        job_fail(job=job, error=JobTimeLimitExceeded())
    except Exception as exc:
        logger.exception("job %s crashed", job.uid)
        job_fail(job=job, error=InternalServerError(str(exc)))
    logger.info("job %s finished in %.3f s", job.uid, time.monotonic() - started)


def _adapter(job: Job, connector: DataConnector) -> DPAdapter:
    adapter = get_adapter(job.library)(body=job.request, connector=connector, metadata=job.dataset.metadata)
    adapter.validate()
    return adapter


def _run_without_charge(job: Job) -> None:
    """Dummy query (cost and run on dummy data) or cost estimate (cost on the real data)."""
    with job_time_limit():
        if job.kind == Job.Kind.DUMMY:
            connector = get_dummy_connector(
                job.dataset, nb_rows=job.request["dummy_nb_rows"], seed=job.request["dummy_seed"]
            )
            adapter = _adapter(job, connector)
            cost = adapter.cost()
            response = _query_response(job, cost, adapter.run())
        else:
            response = _adapter(job, get_connector(job.dataset)).cost().to_wire()
    job_complete(job=job, result=response)


def _run_query(job: Job) -> None:
    user, dataset = job.user, job.dataset
    user_claim_query_slot(user=user)
    try:
        with job_time_limit():
            adapter = _adapter(job, get_connector(dataset))
            cost = adapter.cost()
            budget_check_affordable(user=user, dataset=dataset, epsilon=cost.epsilon, delta=cost.delta)
            response = _query_response(job, cost, adapter.run())
        with transaction.atomic():
            budget_charge(user=user, dataset=dataset, epsilon=cost.epsilon, delta=cost.delta, job_uid=job.uid)
            archive_record(job=job, response=response)
            job_complete(job=job, result=response)
    finally:
        user_release_query_slot(user=user)


def _query_response(job: Job, cost: Cost, result: dict[str, Any]) -> dict[str, Any]:
    return {**cost.to_wire(), "requested_by": job.user.username, "result": result}


def archive_record(*, job: Job, response: dict[str, Any]) -> QueryArchive:
    """Archive a real query with its answer."""
    return QueryArchive.objects.create(
        user=job.user,
        dataset=job.dataset,
        user_name=job.user.username,
        dataset_name=job.dataset.name,
        dp_library=job.library,
        job_uid=job.uid,
        client_input=job.request,
        response=response,
    )


def job_complete(*, job: Job, result: dict[str, Any]) -> None:
    """Mark the job complete with its result."""
    job.status, job.result, job.status_code, job.finished_at = Job.Status.COMPLETE, result, 200, timezone.now()
    job.save(update_fields=["status", "result", "status_code", "finished_at"])


def job_fail(*, job: Job, error: LomasError) -> None:
    """Mark the job failed with the error its client will receive."""
    if error.status >= 500:
        logger.error("job %s failed internally: %s", job.uid, error.message)
    else:
        logger.info("job %s failed: %s %s", job.uid, error.wire_type, error.message)
    job.status, job.error, job.status_code, job.finished_at = (
        Job.Status.FAILED,
        error.to_wire(),
        error.status,
        timezone.now(),
    )
    job.save(update_fields=["status", "error", "status_code", "finished_at"])


def job_collect(*, job: Job) -> tuple[dict[str, Any], int]:
    """The job as its owner sees it; a complete job is handed out once and then deleted."""
    wire = job_to_wire(job)
    if job.status == Job.Status.COMPLETE:
        Job.objects.filter(uid=job.uid, status=Job.Status.COMPLETE).delete()
        return wire, 200
    if job.status == Job.Status.FAILED:
        return wire, job.status_code
    return wire, 200


@transaction.atomic
def archive_drop_all(*, actor: Actor) -> int:
    """Delete every archived query (the demo set-up starts from an empty archive), audited; returns how many."""
    count, _ = QueryArchive.objects.all().delete()
    audit_record(actor=actor, action="collection.drop", target="queries_archive", details={"deleted": count})
    return count
