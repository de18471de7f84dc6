"""Budget services: exact arithmetic, the append-only ledger, refusals that charge nothing."""

from decimal import Decimal
from uuid import uuid4

import pytest
from django.db import IntegrityError, transaction

from budgets.models import Budget, LedgerEntry
from budgets.selectors import budget_ledger_totals
from budgets.services import budget_charge, budget_grant, budget_set_initial
from lomas.errors import InvalidQuery, NotEnoughBudget, UnauthorizedAccess

pytestmark = pytest.mark.django_db


def _charge(user, dataset, epsilon, delta=0.0):
    return budget_charge(user=user, dataset=dataset, epsilon=epsilon, delta=delta, job_uid=uuid4())


def test_ten_charges_of_a_tenth_exhaust_a_budget_of_one_exactly(alice, iris):
    # given
    budget_grant(user=alice, dataset=iris, epsilon=1.0, delta=0.0)
    # when
    for _ in range(10):
        _charge(alice, iris, 0.1)
    # then
    budget = Budget.objects.get(user=alice, dataset=iris)
    assert budget.spent_epsilon == Decimal("1.0")
    assert budget.remaining_epsilon == 0
    with pytest.raises(NotEnoughBudget):
        _charge(alice, iris, 1e-12)


def test_charge_at_exact_remaining_passes_then_next_is_refused(alice, penguin):
    _charge(alice, penguin, 10.0, 0.005)
    with pytest.raises(NotEnoughBudget, match=r"^Not enough budget for this query epsilon remaining 0.0, delta"):
        _charge(alice, penguin, 0.1)
    assert LedgerEntry.objects.filter(budget__user=alice, kind=LedgerEntry.Kind.CHARGE).count() == 1


def test_refused_charge_leaves_spent_and_ledger_untouched(alice, penguin):
    _charge(alice, penguin, 4.0, 0.001)
    with pytest.raises(NotEnoughBudget):
        _charge(alice, penguin, 7.0, 0.0)
    budget = Budget.objects.get(user=alice, dataset=penguin)
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal(4), Decimal("0.001"))
    assert budget_ledger_totals(budget=budget) == (budget.spent_epsilon, budget.spent_delta)


def test_delta_alone_can_exhaust_the_budget(alice, penguin):
    with pytest.raises(NotEnoughBudget, match=r"delta remaining 0\.005"):
        _charge(alice, penguin, 0.1, 0.006)


def test_charge_without_access_is_unauthorized(bob, penguin):
    with pytest.raises(UnauthorizedAccess, match=r"^Bob does not have access to PENGUIN\."):
        _charge(bob, penguin, 0.1)


def test_grant_with_already_spent_amount_is_a_seed_entry(bob, penguin):
    budget = budget_grant(user=bob, dataset=penguin, epsilon=5, delta=5e-4, spent_epsilon=0.2, spent_delta=1e-7)
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal("0.2"), Decimal("1E-7"))
    assert list(budget.ledger.values_list("kind", flat=True)) == [LedgerEntry.Kind.GRANT, LedgerEntry.Kind.SEED]


def test_initial_cannot_go_below_spent(alice, penguin):
    _charge(alice, penguin, 3.0)
    with pytest.raises(InvalidQuery, match="cannot be set below the spent budget"):
        budget_set_initial(user=alice, dataset=penguin, epsilon=2.0)
    assert budget_set_initial(user=alice, dataset=penguin, epsilon=3.0).initial_epsilon == Decimal(3)


def test_database_refuses_spent_above_initial(alice, penguin):
    with pytest.raises(IntegrityError), transaction.atomic():
        Budget.objects.filter(user=alice, dataset=penguin).update(spent_epsilon=Decimal(11))


def test_ledger_rows_cannot_be_changed_or_deleted(alice, penguin):
    entry = _charge(alice, penguin, 1.0)
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    with pytest.raises(TypeError, match="append-only"):
        entry.delete()
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).update(epsilon=0)
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.all().delete()
