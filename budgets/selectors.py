"""Reads on budgets, and the access check every dataset route starts with."""

from decimal import Decimal

from django.db.models import Sum

from accounts.models import User
from accounts.selectors import user_require_lomas_user
from budgets.amounts import Amounts
from budgets.models import Budget, LedgerEntry
from datasets.models import Dataset
from datasets.selectors import dataset_get_by_name
from lomas.errors import NO_ACCESS, NotEnoughBudget, UnauthorizedAccess


def access_check(*, user: User, dataset_name: str) -> Dataset:
    """User → dataset → access, in the spec's order and with its messages (403, 400, 403)."""
    user_require_lomas_user(user=user)
    dataset = dataset_get_by_name(name=dataset_name)
    if not Budget.objects.filter(user=user, dataset=dataset).exists():
        raise UnauthorizedAccess(NO_ACCESS.format(user=user.username, dataset=dataset.name))
    return dataset


def budget_get(*, user: User, dataset: Dataset) -> Budget:
    """The user's budget on the dataset (access must have been checked)."""
    return Budget.objects.get(user=user, dataset=dataset)


def budget_ledger_totals(*, budget: Budget) -> tuple[Decimal, Decimal]:
    """The sums of the budget's ledger: always equal to its spent amounts."""
    totals = LedgerEntry.objects.filter(budget=budget).aggregate(epsilon=Sum("epsilon"), delta=Sum("delta"))
    return totals["epsilon"] or Decimal(0), totals["delta"] or Decimal(0)


def budget_list_for_user(*, user: User) -> list[Budget]:
    """Every budget of the user."""
    return list(Budget.objects.filter(user=user).select_related("dataset"))


def budget_check_affordable(*, user: User, dataset: Dataset, epsilon: float, delta: float) -> None:
    """Refuse, without a lock, a cost the remaining budget cannot cover (budget_charge re-checks under lock)."""
    budget = budget_get(user=user, dataset=dataset)
    cost = Amounts.of(epsilon, delta)
    if budget.remaining_epsilon < cost.epsilon or budget.remaining_delta < cost.delta:
        raise NotEnoughBudget(epsilon=float(budget.remaining_epsilon), delta=float(budget.remaining_delta))


def budget_snapshot(*, budget: Budget) -> dict:
    """A budget's figures and full ledger as plain JSON (kept in the audit trail when a budget is deleted)."""
    return {
        "user": budget.user.username,
        "dataset": budget.dataset.name,
        "initial_epsilon": float(budget.initial_epsilon),
        "initial_delta": float(budget.initial_delta),
        "spent_epsilon": float(budget.spent_epsilon),
        "spent_delta": float(budget.spent_delta),
        "ledger": [
            {
                "kind": entry.kind,
                "epsilon": float(entry.epsilon),
                "delta": float(entry.delta),
                "job_uid": str(entry.job_uid) if entry.job_uid else None,
                "note": entry.note,
                "created_at": entry.created_at.isoformat(),
            }
            for entry in budget.ledger.order_by("created_at", "pk")
        ],
    }


def budget_snapshot_list(*, user: User | None = None, dataset: Dataset | None = None) -> list[dict]:
    """Snapshots of every budget of a user and/or on a dataset."""
    budgets = Budget.objects.select_related("user", "dataset").order_by("pk")
    if user is not None:
        budgets = budgets.filter(user=user)
    if dataset is not None:
        budgets = budgets.filter(dataset=dataset)
    return [budget_snapshot(budget=budget) for budget in budgets]


def budget_to_wire(budget: Budget) -> dict:
    """A `datasets_list` entry of a lomas User (spec §4.1)."""
    return {
        "dataset_name": budget.dataset.name,
        "initial_epsilon": float(budget.initial_epsilon),
        "initial_delta": float(budget.initial_delta),
        "total_spent_epsilon": float(budget.spent_epsilon),
        "total_spent_delta": float(budget.spent_delta),
    }
