"""Row locks on PostgreSQL: concurrent charges never overspend a budget, nor a dataset's total cap."""

import threading
from uuid import uuid4

import pytest
from django.db import connection, connections

from budgets.models import Budget, LedgerEntry
from budgets.selectors import DatasetBudgetExhausted, budget_ledger_totals, dataset_spent
from budgets.services import budget_charge, budget_grant, dataset_budget_set
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
    assert LedgerEntry.objects.filter(budget=budget, kind=LedgerEntry.Kind.CHARGE).count() == 1
    assert budget_ledger_totals(budget=budget) == (budget.spent_epsilon, budget.spent_delta)


def test_researchers_racing_on_a_capped_dataset_never_exceed_its_cap(penguin, capsys):
    from accounts.services import user_create

    researchers = [user_create(username=f"Racer{i}") for i in range(8)]
    for researcher in researchers:
        budget_grant(user=researcher, dataset=penguin, epsilon=10, delta=0.001)
    dataset_budget_set(actor="test", dataset=penguin, epsilon=5, delta=0.001)
    charges_each, cost = 3, 0.5
    barrier = threading.Barrier(len(researchers))
    outcomes: list[str] = []

    def race(researcher) -> None:
        barrier.wait()
        try:
            for _ in range(charges_each):
                try:
                    budget_charge(user=researcher, dataset=penguin, epsilon=cost, delta=1e-5, job_uid=uuid4())
                    outcomes.append("charged")
                except DatasetBudgetExhausted:
                    outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race, args=(researcher,)) for researcher in researchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 24 charges of 0.5 each fit every researcher's budget; the cap of 5 admits exactly 10 of them.
    assert outcomes.count("charged") == 10 and outcomes.count("refused") == 14
    assert dataset_spent(dataset=penguin).epsilon == 5
    assert LedgerEntry.objects.filter(budget__dataset=penguin, kind=LedgerEntry.Kind.CHARGE).count() == 10
    spent = float(dataset_spent(dataset=penguin).epsilon)
    with capsys.disabled():
        print(f"\ncapped race: {len(researchers)} researchers, {outcomes.count('charged')} charged, "
              f"{outcomes.count('refused')} refused, ε spent {spent:g} of 5")  # fmt: skip
