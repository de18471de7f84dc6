"""The query life cycle: submit a job, run it in a worker, hand its result back once.

A real query runs strictly as: claim the user's query slot → validate and cost on the
twin (dummy rows from the metadata) → budget pre-check → rehearse on the twin → run on
the private data → one transaction that ends the job, locks the budget row, re-checks,
charges, archives and releases the slot (a failure before the private data releases it
too, uncharged). Once the private data is read, the outcome is charged whatever it is: a
failure there is answered with one fixed message. Dummy queries and cost estimates never
read private data, lock, charge or archive (spec §2).

A job ends once: it is started, completed and failed by compare-and-set on its row, and
the ledger refuses a second charge for it. A started job holds a short lease
(LOMAS_QUERY_LEASE_SECONDS) that a heartbeat thread renews while it runs: one whose worker
died fails with a 500 when the worker reports the loss, when its message is delivered
again, or when it is polled after its lease; its user's query slot is freed when the job
fails or its lease runs out. It charges nothing unless it had started reading private data.
"""

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from accounts.models import User
from accounts.services import (
    Actor,
    audit_record,
    user_claim_query_slot,
    user_lock,
    user_release_query_slot,
    user_renew_query_slot,
)
from budgets.amounts import to_charged_float
from budgets.selectors import budget_check_affordable
from budgets.services import budget_charge
from datasets.connectors import get_connector, get_dummy_connector
from datasets.connectors.base import DataConnector, DatasetUnavailable
from datasets.metadata import population_size
from datasets.models import Dataset
from datasets.selectors import dataset_list_hot
from lomas import logs, metrics, notify, tracing
from lomas.errors import (
    DeltaTooLarge,
    ExternalLibraryError,
    InternalServerError,
    InvalidQuery,
    LomasError,
    NotEnoughBudget,
    PrivateRunFailed,
    ServiceUnavailable,
)
from queries.libraries import ADAPTERS, get_adapter
from queries.libraries.base import Cost, DPAdapter, request_scope, twin_connector
from queries.memory_limit import JobMemoryExceeded, job_memory_limit
from queries.models import Job, QueryArchive
from queries.selectors import job_count_in_flight, job_to_wire
from queries.time_limit import JobTimeLimitExceeded, TimeLimitReached, job_time_limit

logger = logging.getLogger("queries")

JOBS_IN_FLIGHT = (
    "User {user} already has {count} jobs in progress, the most this server runs at once for one user. "
    "Please, wait for one of them to finish before submitting another."
)


@tracing.traced("job.submit")
def job_submit(*, user: User, dataset: Dataset, library: str, kind: str, request_body: dict[str, Any]) -> Job:
    """Record a job and queue it for a worker once the job row is committed; a cost estimate the
    estimate cache remembers for this user is recorded complete instead.

    A cost estimate or dummy query is refused (400) while the user has LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER
    jobs in progress; real queries keep their own rule, one at a time (the query slot). An unreachable
    broker fails the job and raises ServiceUnavailable (503) within a few seconds.
    """
    known = (
        _estimate_known(_estimate_key(user=user, dataset=dataset, library=library, request=request_body))
        if kind == Job.Kind.COST
        else None
    )
    if known is not None:  # a remembered estimate: complete at once, without a worker hop
        now = timezone.now()
        job = Job.objects.create(
            user=user,
            dataset=dataset,
            library=library,
            kind=kind,
            request=request_body,
            status=Job.Status.COMPLETE,
            result=known.to_wire(),
            started_at=now,
            finished_at=now,
        )
        tracing.annotate(job=job.uid, user=user.username, dataset=dataset.name, library=library, kind=kind)
        logger.info("job %s completed at submission: a remembered %s estimate", job.uid, library)
        return job
    with transaction.atomic():
        if kind != Job.Kind.QUERY:
            _check_jobs_in_flight(user=user)
        job = Job.objects.create(user=user, dataset=dataset, library=library, kind=kind, request=request_body)
        tracing.annotate(job=job.uid, user=user.username, dataset=dataset.name, library=library, kind=kind)
        logs.bind(job=job.uid)
        transaction.on_commit(tracing.later_in_span("celery.publish", lambda: _job_enqueue(job)))
    logger.info("job %s submitted: %s %s by %s on %s", job.uid, library, kind, user.username, dataset.name)
    return job


def _check_jobs_in_flight(*, user: User) -> None:
    """Refuse a job past the user's limit of jobs in progress; the user's row is locked, so that
    concurrent submissions count one another."""
    limit = settings.LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER
    if not limit:
        return
    user_lock(user=user)
    if (count := job_count_in_flight(user=user)) >= limit:
        raise InvalidQuery(JOBS_IN_FLIGHT.format(user=user.username, count=count))


def _job_enqueue(job: Job) -> None:
    from queries.tasks import job_run_task

    try:
        job_run_task.apply_async(
            args=[str(job.uid)],
            queue=settings.LOMAS_JOB_QUEUES[job.kind],
            retry=True,
            retry_policy=settings.LOMAS_PUBLISH_RETRY_POLICY,
        )
    except (BrokerError, OSError) as exc:
        job_fail(job=job, error=InternalServerError(f"job broker unreachable: {exc}"))
        raise ServiceUnavailable(f"job broker unreachable: {exc}") from exc


@tracing.traced("job.run")
def job_run(*, job_uid: UUID | str) -> None:
    """Run a job once, under a lease.

    A message delivered again finds the job claimed and does not run it: it fails the job if
    the job's lease is over (its worker died), and otherwise leaves it to the worker running it.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.LOMAS_QUERY_LEASE_SECONDS)
    claimed = Job.objects.filter(uid=job_uid, status=Job.Status.IN_PROGRESS, started_at__isnull=True).update(
        started_at=now, lease_until=lease_until
    )
    if not claimed:
        job = Job.objects.filter(uid=job_uid).first()
        if job is None or not job_expire(job=job):
            logger.warning("job %s already started, finished or gone; skipped", job_uid)
        return
    job = Job.objects.select_related("user", "dataset").get(uid=job_uid)
    tracing.annotate(job=job.uid, user=job.user.username, dataset=job.dataset.name, library=job.library, kind=job.kind)
    logs.bind(job=job.uid, user=job.user.username)
    outline = {"library": job.library, "kind": job.kind, "dataset": job.dataset.name}
    logger.info("job %s started: %s %s on %s", job.uid, job.library, job.kind, job.dataset.name, extra=outline)
    started = time.monotonic()
    try:
        with job_heartbeat(job=job):
            get_adapter(job.library).warm_up()  # outside the time limit: never interrupt an import
            with request_scope():
                if job.kind == Job.Kind.QUERY:
                    _run_query(job)
                else:
                    _run_without_charge(job)
    except LomasError as exc:
        job_fail(job=job, error=exc)
    except (TimeLimitReached, SoftTimeLimitExceeded):
        job_fail(job=job, error=JobTimeLimitExceeded())
    except MemoryError:
        job_fail(job=job, error=JobMemoryExceeded())
    except Exception as exc:
        logger.exception("job %s crashed", job.uid)
        job_fail(job=job, error=InternalServerError(str(exc)))
    seconds = time.monotonic() - started
    metrics.observe_job(library=job.library, kind=job.kind, status=job.status, seconds=seconds)
    logger.info(
        "job %s finished: %s in %.3f s",
        job.uid,
        job.status,
        seconds,
        extra={**outline, "status": job.status, "duration_seconds": round(seconds, 6)},
    )


def job_renew_lease(*, job: Job) -> bool:
    """Extend the lease of a job in progress, and of the query slot it holds; False (nothing written) once it ended."""
    lease_until = timezone.now() + timedelta(seconds=settings.LOMAS_QUERY_LEASE_SECONDS)
    if not Job.objects.filter(uid=job.uid, status=Job.Status.IN_PROGRESS).update(lease_until=lease_until):
        return False
    user_renew_query_slot(user=job.user, job_uid=job.uid, until=lease_until)
    return True


@contextmanager
def job_heartbeat(*, job: Job) -> Iterator[None]:
    """Renew the job's lease every LOMAS_JOB_HEARTBEAT_SECONDS from a thread while the block runs.

    The thread stops when the block ends or the job has ended (failed meanwhile, say): a job
    whose whole worker died keeps its lease no longer than LOMAS_QUERY_LEASE_SECONDS.
    """
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.LOMAS_JOB_HEARTBEAT_SECONDS):
                try:
                    if not job_renew_lease(job=job):
                        return
                except (DatabaseError, MemoryError):  # the database is unreachable, or the job's memory full
                    logger.warning("job %s: lease not renewed this time", job.uid)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"lease-{job.uid}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _adapter(job: Job, connector: DataConnector) -> DPAdapter:
    adapter = tracing.trace_adapter(
        get_adapter(job.library)(body=job.request, connector=connector, metadata=job.dataset.metadata)
    )
    adapter.validate()
    return adapter


def _cost(job: Job, adapter: DPAdapter) -> Cost:
    """The adapter's cost as the exact amounts a budget is charged (15 significant digits, rounded up):
    what is estimated, told and charged from here on.

    Refused (422) unless both amounts are finite and non-negative, and (400) when its delta is not
    below 1/n for the n rows the dataset may hold.
    """
    reported = adapter.cost()
    if not all(math.isfinite(amount) and amount >= 0 for amount in (reported.epsilon, reported.delta)):
        raise ExternalLibraryError(
            f"The library reported an invalid privacy cost (epsilon {reported.epsilon}, delta {reported.delta}).",
            library=job.library,
        )
    cost = Cost(epsilon=to_charged_float(reported.epsilon), delta=to_charged_float(reported.delta))
    rows = population_size(job.dataset.metadata)
    if cost.delta > 0 and (rows is None or cost.delta * rows >= 1):
        raise DeltaTooLarge(delta=cost.delta, rows=rows)
    return cost


def _twin_cost(job: Job) -> tuple[DPAdapter, Cost]:
    """The request checked and costed on its twin (dummy rows from the metadata): no private row is read."""
    twin = _adapter(job, twin_connector(job.dataset.metadata))
    return twin, _cost(job, twin)


def _run_without_charge(job: Job) -> None:
    """Dummy query (cost and run on dummy data) or cost estimate (on the twin)."""
    with job_time_limit(), job_memory_limit():
        if job.kind == Job.Kind.DUMMY:
            connector = get_dummy_connector(
                job.dataset, nb_rows=job.request["dummy_nb_rows"], seed=job.request["dummy_seed"]
            )
            adapter = _adapter(job, connector)
            cost = _cost(job, adapter)
            response = _query_response(job, cost, adapter.run())
        else:
            response = _estimate_cost(job).to_wire()
    job_complete(job=job, result=response)


def _estimate_cost(job: Job) -> Cost:
    """A cost estimate, remembered for LOMAS_COST_CACHE_SECONDS in the cache shared by the workers."""
    key = _estimate_key(user=job.user, dataset=job.dataset, library=job.library, request=job.request)
    if (known := _estimate_known(key)) is not None:
        return known
    _, cost = _twin_cost(job)
    cache.set(key, (cost.epsilon, cost.delta), timeout=settings.LOMAS_COST_CACHE_SECONDS)
    return cost


def _estimate_known(key: str) -> Cost | None:
    """The estimate remembered under this key (_estimate_key), or None."""
    known = cache.get(key)
    return None if known is None else Cost(epsilon=known[0], delta=known[1])


def _estimate_key(*, user: User, dataset: Dataset, library: str, request: dict[str, Any]) -> str:
    """Costs read no private data, so the key is the user, the library, the request and the dataset's
    metadata version. It names the user: how fast an estimate answers tells nobody what another
    researcher asked."""
    identity = [user.pk, library, request, dataset.pk, dataset.version, dataset.metadata]
    return "cost:" + hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _run_query(job: Job) -> None:
    """A real query: every check on the request, the metadata and the twin, then one charged release.

    Whatever happens once private rows are read is a release: a failure there (the time limit
    included) is charged in full and answered without any library text.
    """
    user, dataset = job.user, job.dataset
    user_claim_query_slot(user=user, job_uid=job.uid)
    released = False
    try:
        cost, response, failure = _release(job)
        with transaction.atomic():
            ended = job_fail(job=job, error=failure) if failure else job_complete(job=job, result=response)
            if not ended:
                return  # failed meanwhile (lease over): the result is discarded, uncharged
            budget_charge(user=user, dataset=dataset, epsilon=cost.epsilon, delta=cost.delta, job_uid=job.uid)
            archive_record(job=job, response=response)
            # Freed with the completion: a client that sees "complete" may submit its next query at once.
            user_release_query_slot(user=user, job_uid=job.uid)
        released = True
    finally:
        if not released:
            user_release_query_slot(user=user, job_uid=job.uid)


def _release(job: Job) -> tuple[Cost, dict[str, Any], LomasError | None]:
    """Check on the twin, then run on the private data: the cost, the response and the failure, if any.

    Errors before the private rows are read propagate (the job fails, uncharged), and so does a
    source that cannot be read at all; any other failure after it (the time or memory limit
    included) is the charged failure.
    """
    user, dataset = job.user, job.dataset
    on_private_data = False
    try:
        with job_time_limit(), job_memory_limit():
            twin, cost = _twin_cost(job)
            budget_check_affordable(user=user, dataset=dataset, epsilon=cost.epsilon, delta=cost.delta)
            twin.rehearse()
            real = _adapter(job, get_connector(dataset))
            on_private_data = True
            Job.objects.filter(uid=job.uid).update(private_run_cost=cost.to_wire())
            return cost, _query_response(job, cost, real.run()), None
    except (TimeLimitReached, SoftTimeLimitExceeded):
        if not on_private_data:
            raise
        failure: LomasError = JobTimeLimitExceeded(charged=True)
    except MemoryError:
        if not on_private_data:
            raise
        failure = JobMemoryExceeded(charged=True)
    except DatasetUnavailable:
        raise  # the source cannot be read (a server fault, the same for every query): a 500, uncharged
    except Exception:
        if not on_private_data:
            raise
        logger.exception("job %s failed on the private data; charged, its details withheld", job.uid)
        failure = PrivateRunFailed(library=job.library)
    return cost, {**_query_response(job, cost, None), "error": failure.to_wire()}, failure


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


def job_complete(*, job: Job, result: dict[str, Any]) -> bool:
    """Mark the job complete with its result; False (and nothing written) if it is no longer in progress."""
    return _job_finish(job=job, status=Job.Status.COMPLETE, result=result, status_code=200)


def job_fail(*, job: Job, error: LomasError) -> bool:
    """Mark the job failed with the error its client will receive; False if it had already ended."""
    if error.status >= 500:
        logger.error("job %s failed internally: %s", job.uid, error.message)
    else:
        logger.info("job %s failed: %s %s", job.uid, error.wire_type, error.message)
    return _job_finish(job=job, status=Job.Status.FAILED, error=error.to_wire(), status_code=error.status)


def _job_finish(*, job: Job, status: str, status_code: int, **outcome: Any) -> bool:
    """End a job in progress, a compare-and-set on its status: a job ends exactly once."""
    fields = {"status": status, "status_code": status_code, "finished_at": timezone.now(), **outcome}
    if not Job.objects.filter(uid=job.uid, status=Job.Status.IN_PROGRESS).update(**fields):
        logger.warning("job %s had already ended; %s not recorded", job.uid, status)
        return False
    transaction.on_commit(lambda: notify.wake(job_wake_up_name(job.uid)))
    for name, value in fields.items():
        setattr(job, name, value)
    return True


def job_wake_up_name(uid: UUID | str) -> str:
    """The lomas.notify name a job's end wakes: a status request waiting for it."""
    return f"job:{uid}"


def job_fail_lost(*, job: Job, reason: str) -> bool:
    """Fail a job whose worker died (500) and free the query slot it held; False if it had ended.

    A query that had started reading private data is charged its cost all the same: what its
    researcher observes (the failure) may depend on the data.
    """
    error = InternalServerError(f"worker lost: {reason}")
    with transaction.atomic():
        if not job_fail(job=job, error=error):
            return False
        cost = Job.objects.values_list("private_run_cost", flat=True).get(uid=job.uid)
        if cost is not None:
            _charge_lost(job=job, cost=cost, error=error)
    user_release_query_slot(user=job.user, job_uid=job.uid)
    return True


def _charge_lost(*, job: Job, cost: dict[str, float], error: LomasError) -> None:
    """Charge and archive a query that died on the private data (within the caller's transaction)."""
    try:
        budget_charge(user=job.user, dataset=job.dataset, epsilon=cost["epsilon"], delta=cost["delta"], job_uid=job.uid)
    except NotEnoughBudget:
        logger.error("job %s died on the private data and its budget no longer covers its cost", job.uid)
        return
    response = {**cost, "requested_by": job.user.username, "result": None, "error": error.to_wire()}
    archive_record(job=job, response=response)
    logger.warning("job %s lost its worker on the private data: charged %s", job.uid, cost)


def job_expire(*, job: Job) -> bool:
    """Fail a job still in progress after its lease (its worker died); whether it did."""
    if job.status != Job.Status.IN_PROGRESS or job.lease_until is None or job.lease_until > timezone.now():
        return False
    return job_fail_lost(job=job, reason=f"lease over since {job.lease_until:%Y-%m-%d %H:%M:%S}")


def job_collect(*, job: Job) -> tuple[dict[str, Any], int]:
    """The job as its owner sees it; a complete job is handed out once and then marked collected.

    A job in progress past its lease has lost its worker: it is failed first.
    """
    job_expire(job=job)
    wire = job_to_wire(job)
    if job.status == Job.Status.COMPLETE:
        Job.objects.filter(uid=job.uid, status=Job.Status.COMPLETE, collected_at=None).update(
            collected_at=timezone.now()
        )
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


def dataset_prepare_hot() -> None:
    """Prepare the hot datasets (settings.LOMAS_HOT_DATASETS) for every library, as a worker starts:
    the machine's columnar copy and SQLite file, and this process's readers and dummy twins, each
    library's warm-up request run on them. What cannot be prepared is logged and left to the first query."""
    for dataset in dataset_list_hot():
        started = time.monotonic()
        try:
            connector = get_connector(dataset)
        except DatasetUnavailable:
            logger.exception("dataset %s could not be prepared", dataset.name)
            continue
        unprepared = []
        for library in ADAPTERS:
            try:
                get_adapter(library).prepare(connector=connector, metadata=dataset.metadata)
            except Exception:
                logger.exception("dataset %s could not be prepared for %s", dataset.name, library)
                unprepared.append(library)
        logger.info(
            "dataset %s prepared in %.3f s%s",
            dataset.name,
            time.monotonic() - started,
            f", except for {', '.join(unprepared)}" if unprepared else "",
        )
