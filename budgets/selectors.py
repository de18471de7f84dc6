"""Reads on budgets, and the access check every dataset route starts with."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_require_lomas_user
from budgets.amounts import Amounts
from budgets.models import Budget, DatasetBudget, LedgerEntry
from datasets.models import Dataset
from datasets.selectors import dataset_get_by_name
from lomas.errors import NO_ACCESS, InvalidQuery, NotEnoughBudget, UnauthorizedAccess

DATASET_BUDGET_EXHAUSTED = (
    "The dataset budget of {dataset} is exhausted: its researchers together have epsilon {epsilon}, delta {delta} left."
)


class DatasetBudgetExhausted(NotEnoughBudget):
    """The dataset's total cap does not cover the cost, whatever the user's own budget (400)."""

    def __init__(self, *, dataset: str, epsilon: float, delta: float) -> None:
        InvalidQuery.__init__(self, DATASET_BUDGET_EXHAUSTED.format(dataset=dataset, epsilon=epsilon, delta=delta))


def access_check(*, user: User, dataset_name: str) -> Dataset:
    """User → dataset → access, in the spec's order and with its messages (403, 400, 403)."""
    user_require_lomas_user(user=user)
    dataset = dataset_get_by_name(name=dataset_name)
    if not Budget.objects.filter(user=user, dataset=dataset, revoked_at=None).exists():
        raise UnauthorizedAccess(NO_ACCESS.format(user=user.username, dataset=dataset.name))
    return dataset


def budget_get(*, user: User, dataset: Dataset) -> Budget:
    """The user's unrevoked budget on the dataset, read with the dataset's cap row (access must have been checked)."""
    return Budget.objects.select_related("dataset__total_budget").get(user=user, dataset=dataset, revoked_at=None)


def budget_ledger_totals(*, budget: Budget) -> tuple[Decimal, Decimal]:
    """The sums of the budget's spending rows: always equal to its spent amounts."""
    return _sums(LedgerEntry.objects.filter(budget=budget, kind__in=LedgerEntry.SPENDING))


def budget_ledger_grants(*, budget: Budget) -> tuple[Decimal, Decimal]:
    """The sums of the budget's grant rows: always equal to its initial amounts."""
    return _sums(LedgerEntry.objects.filter(budget=budget, kind=LedgerEntry.Kind.GRANT))


def _sums(entries: QuerySet[LedgerEntry]) -> tuple[Decimal, Decimal]:
    totals = entries.aggregate(epsilon=Sum("epsilon"), delta=Sum("delta"))
    return totals["epsilon"] or Decimal(0), totals["delta"] or Decimal(0)


def budget_list_for_user(*, user: User) -> list[Budget]:
    """Every unrevoked budget of the user (their access)."""
    return list(Budget.objects.filter(user=user, revoked_at=None).select_related("dataset"))


def budget_list_kept(*, user: User) -> list[Budget]:
    """The user's revoked budgets on which something is spent: what the ledger keeps of them."""
    return list(
        Budget.objects.filter(user=user, revoked_at__isnull=False)
        .filter(Q(spent_epsilon__gt=0) | Q(spent_delta__gt=0))
        .select_related("dataset")
        .order_by("dataset__name")
    )


def budget_kept_to_wire(*, user: User) -> list[dict[str, Any]]:
    """What the ledger keeps of the user's revoked budgets: the amounts spent on each dataset."""
    return [
        {
            "dataset": budget.dataset.name,
            "spent_epsilon": float(budget.spent_epsilon),
            "spent_delta": float(budget.spent_delta),
        }
        for budget in budget_list_kept(user=user)
    ]


def dataset_spent(*, dataset: Dataset) -> Amounts:
    """What all researchers together spent on the dataset (revoked budgets and deleted users included)."""
    totals = Budget.objects.filter(dataset=dataset).aggregate(epsilon=Sum("spent_epsilon"), delta=Sum("spent_delta"))
    return Amounts(totals["epsilon"] or Decimal(0), totals["delta"] or Decimal(0))


def dataset_cap(*, cap: DatasetBudget | None) -> Amounts | None:
    """The (epsilon, delta) cap of a dataset's total budget row, or None if it has none."""
    if cap is None or cap.cap_epsilon is None or cap.cap_delta is None:
        return None
    return Amounts(cap.cap_epsilon, cap.cap_delta)


def _left(cap: Amounts, spent: Amounts) -> Amounts:
    return Amounts(max(cap.epsilon - spent.epsilon, Decimal(0)), max(cap.delta - spent.delta, Decimal(0)))


def dataset_budget_check(*, dataset: Dataset, cap: DatasetBudget | None, cost: Amounts) -> None:
    """Refuse a cost the dataset's cap no longer covers (equality passes); `cap` as read (or locked) by the caller."""
    amounts = dataset_cap(cap=cap)
    if amounts is None:
        return
    left = _left(amounts, dataset_spent(dataset=dataset))
    if left.epsilon < cost.epsilon or left.delta < cost.delta:
        raise DatasetBudgetExhausted(dataset=dataset.name, epsilon=float(left.epsilon), delta=float(left.delta))


def dataset_budget_to_wire(*, dataset: Dataset) -> dict[str, Any]:
    """A dataset's cap (null if none), what all its researchers spent together, and what the cap leaves."""
    spent = dataset_spent(dataset=dataset)
    cap = dataset_cap(cap=DatasetBudget.objects.filter(dataset=dataset).first())
    left = _left(cap, spent) if cap is not None else None
    return {
        "dataset_name": dataset.name,
        "epsilon": float(cap.epsilon) if cap else None,
        "delta": float(cap.delta) if cap else None,
        "total_spent_epsilon": float(spent.epsilon),
        "total_spent_delta": float(spent.delta),
        "remaining_epsilon": float(left.epsilon) if left else None,
        "remaining_delta": float(left.delta) if left else None,
    }


def dataset_budget_list() -> list[dict[str, Any]]:
    """dataset_budget_to_wire for every dataset with budgets or a cap, by name."""
    datasets = Dataset.objects.filter(Q(budgets__isnull=False) | Q(total_budget__cap_epsilon__isnull=False))
    return [dataset_budget_to_wire(dataset=dataset) for dataset in datasets.distinct().order_by("name")]


def budget_check_affordable(*, user: User, dataset: Dataset, epsilon: float, delta: float) -> None:
    """Refuse, without a lock, a cost the remaining budget or the dataset's cap cannot cover.

    budget_charge re-checks both under their locks.
    """
    budget = budget_get(user=user, dataset=dataset)
    cost = Amounts.of(epsilon, delta)
    if budget.remaining_epsilon < cost.epsilon or budget.remaining_delta < cost.delta:
        raise NotEnoughBudget(epsilon=float(budget.remaining_epsilon), delta=float(budget.remaining_delta))
    cap = getattr(budget.dataset, "total_budget", None)  # read with the budget (None: the dataset has no row)
    dataset_budget_check(dataset=dataset, cap=cap, cost=cost)


def budget_snapshot(*, budget: Budget) -> dict:
    """A budget's figures and full ledger as plain JSON (kept in the audit trail when a budget is deleted)."""
    return {
        "user": budget.user.username,
        "dataset": budget.dataset.name,
        "initial_epsilon": float(budget.initial_epsilon),
        "initial_delta": float(budget.initial_delta),
        "spent_epsilon": float(budget.spent_epsilon),
        "spent_delta": float(budget.spent_delta),
        "revoked": budget.is_revoked,
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
