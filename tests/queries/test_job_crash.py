"""A job ends once, is charged at most once, and fails (500, slot freed) when its worker dies:
reported by Celery, seen when its message comes again, or seen when it is polled after its lease.
It charges nothing unless it had started reading private data."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from billiard.exceptions import WorkerLostError
from celery.signals import task_failure
from django.utils import timezone

from accounts.selectors import user_may_query
from accounts.services import user_claim_query_slot
from budgets.models import Budget, LedgerEntry
from queries.models import Job, QueryArchive
from queries.services import job_complete, job_run, job_submit
from queries.tasks import job_run_task

pytestmark = pytest.mark.django_db

LOST = {"type": "InternalServerException"}


def _body() -> dict[str, Any]:
    return {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True}  # fmt: skip


def _running_job(alice: Any, penguin: Any, *, lease_left: timedelta) -> Job:
    """A real query a worker started (it holds the user's slot) and then, maybe, died in."""
    job = job_submit(user=alice, dataset=penguin, library="smartnoise_sql", kind=Job.Kind.QUERY, request_body=_body())
    now = timezone.now()
    Job.objects.filter(uid=job.uid).update(started_at=now, lease_until=now + lease_left)
    user_claim_query_slot(user=alice, job_uid=job.uid)
    job.refresh_from_db()
    return job


def _assert_failed_uncharged_and_slot_free(job: Job, alice: Any) -> None:
    job.refresh_from_db()
    assert (job.status, job.status_code, job.error) == (Job.Status.FAILED, 500, LOST)
    assert not LedgerEntry.objects.filter(job_uid=job.uid).exists()
    assert Budget.objects.get(user=alice).spent_epsilon == 0
    assert user_may_query(user=alice)


def test_a_message_delivered_again_does_not_run_a_finished_job_again(alice, alice_api, submit):
    uid = submit(alice_api, "smartnoise_sql_query", _body()).json()["uid"]
    assert Job.objects.get(uid=uid).status == Job.Status.COMPLETE

    job_run(job_uid=uid)

    assert LedgerEntry.objects.filter(job_uid=uid).count() == 1
    assert Budget.objects.get(user=alice).spent_epsilon == 1
    assert alice_api.get(f"/api/status/{uid}").status_code == 200


def test_a_message_delivered_again_leaves_a_job_in_its_lease_to_its_worker(alice, penguin):
    job = _running_job(alice, penguin, lease_left=timedelta(minutes=5))

    job_run(job_uid=job.uid)

    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS
    assert not user_may_query(user=alice)


def test_a_message_delivered_again_fails_a_job_past_its_lease(alice, penguin):
    job = _running_job(alice, penguin, lease_left=timedelta(seconds=-1))

    job_run(job_uid=job.uid)

    _assert_failed_uncharged_and_slot_free(job, alice)


def test_polling_a_job_past_its_lease_fails_it(alice, alice_api, penguin):
    job = _running_job(alice, penguin, lease_left=timedelta(seconds=-1))

    status = alice_api.get(f"/api/status/{job.uid}")

    assert status.status_code == 500
    assert (status.json()["status"], status.json()["error"]) == ("failed", LOST)
    _assert_failed_uncharged_and_slot_free(job, alice)


def test_a_lost_pool_process_fails_its_job_at_once(alice, penguin):
    job = _running_job(alice, penguin, lease_left=timedelta(minutes=5))

    # What Celery's worker process sends when the pool process running the task dies.
    task_failure.send(
        sender=job_run_task, task_id="t", exception=WorkerLostError("signal 9"), args=[str(job.uid)], kwargs={}
    )

    _assert_failed_uncharged_and_slot_free(job, alice)


def test_a_job_ends_once(alice, penguin):
    job = _running_job(alice, penguin, lease_left=timedelta(seconds=-1))
    job_run(job_uid=job.uid)

    assert not job_complete(job=job, result={"late": True})
    job.refresh_from_db()
    assert (job.status, job.result) == (Job.Status.FAILED, None)


def test_a_lost_worker_report_after_the_job_completed_changes_nothing(alice, alice_api, submit):
    uid = submit(alice_api, "smartnoise_sql_query", _body()).json()["uid"]

    task_failure.send(sender=job_run_task, task_id="t", exception=WorkerLostError("signal 9"), args=[uid], kwargs={})

    assert Job.objects.get(uid=uid).status == Job.Status.COMPLETE
    assert LedgerEntry.objects.filter(job_uid=uid).count() == 1


def test_a_query_that_lost_its_worker_on_the_private_data_is_charged_all_the_same(alice, alice_api, penguin):
    """The failure a researcher sees may depend on the private rows the worker had started reading."""
    job = _running_job(alice, penguin, lease_left=timedelta(minutes=5))
    Job.objects.filter(uid=job.uid).update(private_run_cost={"epsilon": 1.0, "delta": 1.5e-5})  # where it had got

    task_failure.send(
        sender=job_run_task, task_id="t", exception=WorkerLostError("signal 9"), args=[str(job.uid)], kwargs={}
    )

    job.refresh_from_db()
    assert (job.status, job.status_code, job.error) == (Job.Status.FAILED, 500, LOST)
    (charge,) = LedgerEntry.objects.filter(job_uid=job.uid)
    assert (charge.epsilon, charge.delta) == (1, Decimal("0.000015"))
    assert QueryArchive.objects.get(job_uid=job.uid).response["error"] == LOST
    assert user_may_query(user=alice)
    assert alice_api.get(f"/api/status/{job.uid}").status_code == 500


def test_a_real_query_marks_its_cost_as_it_reads_private_data_and_a_refused_one_does_not(alice, alice_api, submit):
    ran = submit(alice_api, "smartnoise_sql_query", _body()).json()["uid"]
    refused = submit(alice_api, "smartnoise_sql_query", {**_body(), "query_str": "SELECT nope FROM df"}).json()["uid"]

    (charge,) = LedgerEntry.objects.filter(job_uid=ran)
    assert Job.objects.get(uid=ran).private_run_cost == {"epsilon": float(charge.epsilon), "delta": float(charge.delta)}
    assert Job.objects.get(uid=refused).private_run_cost is None
