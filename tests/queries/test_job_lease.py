"""A running job's lease is short and renewed by its heartbeat, for the job and its user's query slot;
a job that has ended is never touched."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import LomasProfile
from accounts.services import user_claim_query_slot
from lomas.errors import InternalServerError
from queries.models import Job
from queries.services import job_fail, job_renew_lease, job_submit

pytestmark = pytest.mark.django_db

BODY = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
        "mechanisms": {}, "postprocess": True}  # fmt: skip


def _running_query(alice: Any, penguin: Any) -> Job:
    """A real query a worker started a while ago: its lease and its slot's run out in a second."""
    job = job_submit(user=alice, dataset=penguin, library="smartnoise_sql", kind=Job.Kind.QUERY, request_body=BODY)
    user_claim_query_slot(user=alice, job_uid=job.uid)
    soon = timezone.now() + timedelta(seconds=1)
    Job.objects.filter(uid=job.uid).update(started_at=timezone.now(), lease_until=soon)
    LomasProfile.objects.filter(user=alice).update(query_lease_until=soon)
    job.refresh_from_db()
    return job


def test_the_default_lease_is_short_enough_to_free_a_user_within_a_minute(settings):
    assert settings.LOMAS_QUERY_LEASE_SECONDS <= 30
    assert settings.LOMAS_JOB_HEARTBEAT_SECONDS < settings.LOMAS_QUERY_LEASE_SECONDS / 2


def test_a_heartbeat_extends_the_job_and_its_query_slot_by_a_lease(settings, alice, penguin):
    job = _running_query(alice, penguin)
    before = timezone.now()

    assert job_renew_lease(job=job)

    job.refresh_from_db()
    profile = LomasProfile.objects.get(user=alice)
    lease = timedelta(seconds=settings.LOMAS_QUERY_LEASE_SECONDS)
    assert before + lease <= job.lease_until <= timezone.now() + lease
    assert profile.query_lease_until == job.lease_until
    assert not profile.may_query_now


def test_a_heartbeat_never_touches_a_job_that_has_ended(alice, penguin):
    job = _running_query(alice, penguin)
    job_fail(job=job, error=InternalServerError("lost"))
    lease_until = Job.objects.get(uid=job.uid).lease_until
    slot_until = LomasProfile.objects.get(user=alice).query_lease_until

    assert not job_renew_lease(job=job)

    assert Job.objects.get(uid=job.uid).lease_until == lease_until
    assert LomasProfile.objects.get(user=alice).query_lease_until == slot_until


def test_a_heartbeat_leaves_a_slot_another_job_took_over(alice, penguin):
    job = _running_query(alice, penguin)
    other = job_submit(user=alice, dataset=penguin, library="smartnoise_sql", kind=Job.Kind.QUERY, request_body=BODY)
    LomasProfile.objects.filter(user=alice).update(query_lease_until=timezone.now() - timedelta(seconds=1))
    user_claim_query_slot(user=alice, job_uid=other.uid)
    slot_until = LomasProfile.objects.get(user=alice).query_lease_until

    assert job_renew_lease(job=job)

    profile = LomasProfile.objects.get(user=alice)
    assert (profile.query_lease_job, profile.query_lease_until) == (other.uid, slot_until)
