"""The ledger charges a job at most once: the service refuses, and the database constraint backs it up."""

from decimal import Decimal
from uuid import uuid4

import pytest
from django.db import IntegrityError, transaction

from budgets.models import Budget, LedgerEntry
from budgets.services import budget_charge
from lomas.errors import JobAlreadyCharged

pytestmark = pytest.mark.django_db


def test_a_second_charge_for_the_same_job_is_refused(alice, penguin):
    job = uuid4()
    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=1e-5, job_uid=job)

    with pytest.raises(JobAlreadyCharged):
        budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=1e-5, job_uid=job)

    budget = Budget.objects.get(user=alice, dataset=penguin)
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal("1.5"), Decimal("0.00001"))
    assert LedgerEntry.objects.filter(job_uid=job).count() == 1


def test_charges_of_different_jobs_add_up(alice, penguin):
    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=0, job_uid=uuid4())
    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=0, job_uid=uuid4())

    assert Budget.objects.get(user=alice, dataset=penguin).spent_epsilon == Decimal(3)


def test_the_database_refuses_a_second_charge_row_for_a_job(alice, penguin):
    job = uuid4()
    budget = Budget.objects.get(user=alice, dataset=penguin)
    LedgerEntry.objects.create(budget=budget, kind=LedgerEntry.Kind.CHARGE, epsilon=1, delta=0, job_uid=job)

    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(budget=budget, kind=LedgerEntry.Kind.CHARGE, epsilon=1, delta=0, job_uid=job)

    LedgerEntry.objects.create(budget=budget, kind=LedgerEntry.Kind.ADJUST, epsilon=1, delta=0, job_uid=job)
    assert LedgerEntry.objects.filter(job_uid=job).count() == 2
