"""Reads on budgets, and the access check every dataset route starts with."""

from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

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


def epsilon_spent_per_day(*, days: int = 90, today: date | None = None) -> dict[str, list[tuple[date, Decimal]]]:
    """ε charged by queries per dataset and day over the last `days` days (today included), oldest first.

    Only query charges count: amounts seeded by an import were spent before, on days the ledger does not know.
    """
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("budget__dataset__name", "day")
        .annotate(epsilon=Sum("epsilon"))
        .order_by("budget__dataset__name", "day")
    )
    per_dataset: dict[str, list[tuple[date, Decimal]]] = {}
    for row in rows:
        per_dataset.setdefault(row["budget__dataset__name"], []).append((row["day"], row["epsilon"]))
    return per_dataset


def top_consumers(*, limit: int = 5) -> dict[str, list[tuple[str, Decimal]]]:
    """Per dataset, the users who spent the most ε on it (most first), leaving out those who spent nothing."""
    per_dataset: dict[str, list[tuple[str, Decimal]]] = {}
    budgets = (
        Budget.objects.filter(spent_epsilon__gt=0)
        .values_list("dataset__name", "user__username", "spent_epsilon")
        .order_by("dataset__name", "-spent_epsilon", "user__username")
    )
    for dataset_name, username, spent in budgets:
        consumers = per_dataset.setdefault(dataset_name, [])
        if len(consumers) < limit:
            consumers.append((username, spent))
    return per_dataset
