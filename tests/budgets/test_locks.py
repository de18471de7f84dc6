"""The budget row lock on PostgreSQL: two concurrent charges that together overspend, one is refused."""

import threading
from uuid import uuid4

import pytest
from django.db import connection, connections

from budgets.models import Budget, LedgerEntry
from budgets.selectors import budget_ledger_totals
from budgets.services import budget_charge
from lomas.errors import NotEnoughBudget

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


def test_two_concurrent_charges_cannot_overspend(alice, penguin):
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def charge() -> None:
        barrier.wait()
        try:
            budget_charge(user=alice, dataset=penguin, epsilon=6.0, delta=0.0, job_uid=uuid4())
            outcomes.append("charged")
        except NotEnoughBudget:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=charge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["charged", "refused"]
    budget = Budget.objects.get(user=alice, dataset=penguin)
    assert budget.spent_epsilon == 6
    assert LedgerEntry.objects.filter(budget=budget).count() == 1
    assert budget_ledger_totals(budget=budget) == (budget.spent_epsilon, budget.spent_delta)
