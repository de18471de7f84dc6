"""Writes on budgets. Every change of a spent amount is a ledger row written in the
same transaction that holds the budget's row lock."""

import logging
from decimal import Decimal
from uuid import UUID

from django.db import transaction

from accounts.models import User
from budgets.amounts import Amounts, to_amount
from budgets.locks import budget_lock
from budgets.models import Budget, LedgerEntry
from datasets.models import Dataset
from lomas.errors import InvalidQuery, NotEnoughBudget

logger = logging.getLogger("budgets")


@transaction.atomic
def budget_grant(
    *,
    user: User,
    dataset: Dataset,
    epsilon: float | Decimal,
    delta: float | Decimal,
    spent_epsilon: float | Decimal = 0,
    spent_delta: float | Decimal = 0,
) -> Budget:
    """Give a user access to a dataset with an initial budget (and, for imports, an amount already spent)."""
    if Budget.objects.filter(user=user, dataset=dataset).exists():
        raise InvalidQuery(f"{user.username} already has access to {dataset.name}.")
    initial, spent = Amounts.of(epsilon, delta), Amounts.of(spent_epsilon, spent_delta)
    if spent.epsilon > initial.epsilon or spent.delta > initial.delta:
        raise InvalidQuery("The spent budget cannot exceed the initial budget.")
    budget = Budget.objects.create(
        user=user, dataset=dataset, initial_epsilon=initial.epsilon, initial_delta=initial.delta
    )
    if spent.epsilon or spent.delta:
        _append(budget=budget, kind=LedgerEntry.Kind.SEED, amounts=spent, note="spent before import")
    return budget


@transaction.atomic
def budget_set_initial(
    *, user: User, dataset: Dataset, epsilon: float | Decimal | None = None, delta: float | Decimal | None = None
) -> Budget:
    """Set the initial epsilon and/or delta; never below what is already spent."""
    budget = budget_lock(user=user, dataset=dataset)
    new_epsilon = budget.initial_epsilon if epsilon is None else to_amount(epsilon)
    new_delta = budget.initial_delta if delta is None else to_amount(delta)
    if new_epsilon < budget.spent_epsilon or new_delta < budget.spent_delta:
        raise InvalidQuery(
            f"The initial budget cannot be set below the spent budget "
            f"(epsilon {budget.spent_epsilon}, delta {budget.spent_delta})."
        )
    budget.initial_epsilon, budget.initial_delta = new_epsilon, new_delta
    budget.save(update_fields=["initial_epsilon", "initial_delta"])
    return budget


@transaction.atomic
def budget_charge(*, user: User, dataset: Dataset, epsilon: float, delta: float, job_uid: UUID) -> LedgerEntry:
    """Charge a query's cost: lock, check the remaining budget, append to the ledger.

    Equality passes (spec §2.2). Raises NotEnoughBudget and charges nothing otherwise.
    """
    cost = Amounts.of(epsilon, delta)
    budget = budget_lock(user=user, dataset=dataset)
    if budget.remaining_epsilon < cost.epsilon or budget.remaining_delta < cost.delta:
        raise NotEnoughBudget(epsilon=float(budget.remaining_epsilon), delta=float(budget.remaining_delta))
    entry = _append(budget=budget, kind=LedgerEntry.Kind.CHARGE, amounts=cost, job_uid=job_uid)
    logger.info(
        "charged %s on %s: epsilon %s, delta %s (job %s)",
        user.username,
        dataset.name,
        cost.epsilon,
        cost.delta,
        job_uid,
    )
    return entry


def _append(*, budget: Budget, kind: str, amounts: Amounts, job_uid: UUID | None = None, note: str = "") -> LedgerEntry:
    """Append a ledger row and move the spent amounts with it (the caller holds the lock)."""
    entry = LedgerEntry.objects.create(
        budget=budget, kind=kind, epsilon=amounts.epsilon, delta=amounts.delta, job_uid=job_uid, note=note
    )
    budget.spent_epsilon += amounts.epsilon
    budget.spent_delta += amounts.delta
    budget.save(update_fields=["spent_epsilon", "spent_delta"])
    return entry
