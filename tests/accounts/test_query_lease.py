"""The user's query slot is a lease: one real query at a time, freed by its own job, by an admin,
or by the lease running out when the worker holding it died."""

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.utils import timezone

from accounts.models import LomasProfile
from accounts.selectors import user_may_query
from accounts.services import (
    user_change_may_query,
    user_claim_query_slot,
    user_release_query_slot,
    user_set_may_query,
)
from budgets.collections import user_to_wire
from lomas.errors import UnauthorizedAccess

pytestmark = pytest.mark.django_db


def _end_lease(user: Any) -> None:
    """What the passing of LOMAS_QUERY_LEASE_SECONDS does to a lease."""
    LomasProfile.objects.filter(user=user).update(query_lease_until=timezone.now() - timedelta(seconds=1))


def test_a_second_claim_is_refused_while_the_lease_runs(alice):
    user_claim_query_slot(user=alice, job_uid=uuid4())

    with pytest.raises(UnauthorizedAccess, match="trying to query before end of previous query"):
        user_claim_query_slot(user=alice, job_uid=uuid4())
    assert not user_may_query(user=alice)


def test_the_lease_lasts_the_configured_time(alice, settings):
    settings.LOMAS_QUERY_LEASE_SECONDS = 90
    job = uuid4()
    before = timezone.now()

    user_claim_query_slot(user=alice, job_uid=job)

    profile = LomasProfile.objects.get(user=alice)
    assert (profile.may_query, profile.query_lease_job) == (False, job)
    assert before + timedelta(seconds=90) <= profile.query_lease_until <= timezone.now() + timedelta(seconds=90)


def test_only_the_holding_job_releases_the_slot(alice):
    holder = uuid4()
    user_claim_query_slot(user=alice, job_uid=holder)

    assert not user_release_query_slot(user=alice, job_uid=uuid4())
    assert not user_may_query(user=alice)
    assert user_release_query_slot(user=alice, job_uid=holder)
    assert user_may_query(user=alice)
    profile = LomasProfile.objects.get(user=alice)
    assert (profile.may_query, profile.query_lease_job, profile.query_lease_until) == (True, None, None)


def test_a_lease_that_ran_out_is_free_and_taken_over(alice):
    dead_job, next_job = uuid4(), uuid4()
    user_claim_query_slot(user=alice, job_uid=dead_job)
    _end_lease(alice)

    assert user_may_query(user=alice)
    assert user_to_wire(LomasProfile.objects.get(user=alice).user)["may_query"] is True
    user_claim_query_slot(user=alice, job_uid=next_job)

    assert not user_release_query_slot(user=alice, job_uid=dead_job)
    assert LomasProfile.objects.get(user=alice).query_lease_job == next_job
    assert not user_may_query(user=alice)


def test_an_admin_closing_never_runs_out(alice):
    user_change_may_query(actor="manage.py", user=alice, may_query=False)

    profile = LomasProfile.objects.get(user=alice)
    assert profile.query_lease_until is None
    with pytest.raises(UnauthorizedAccess):
        user_claim_query_slot(user=alice, job_uid=uuid4())
    assert user_to_wire(profile.user)["may_query"] is False


def test_an_admin_release_ends_the_lease(alice):
    stuck = uuid4()
    user_claim_query_slot(user=alice, job_uid=stuck)

    user_set_may_query(user=alice, may_query=True)

    assert user_may_query(user=alice)
    user_claim_query_slot(user=alice, job_uid=uuid4())
    assert not user_release_query_slot(user=alice, job_uid=stuck)
    assert not user_may_query(user=alice)


def test_the_admin_action_releases_a_held_lease(alice, admin_user, client):
    user_claim_query_slot(user=alice, job_uid=uuid4())
    client.force_login(admin_user)

    client.post("/admin/accounts/user/", {"action": "release_query_lock", "_selected_action": [alice.pk]}, follow=True)

    profile = LomasProfile.objects.get(user=alice)
    assert (profile.may_query, profile.query_lease_job, profile.query_lease_until) == (True, None, None)
