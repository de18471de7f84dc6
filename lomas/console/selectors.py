"""Reads for the admin overview that span budgets and queries."""

from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, Sum

from budgets.models import Budget
from datasets.models import Dataset
from queries.models import Job

# A budget is close to exhaustion once this share of its ε or δ is spent.
NEAR_EXHAUSTION = Decimal("0.8")


def dataset_spend_totals() -> list[dict[str, Any]]:
    """Per dataset: its budgets' initial, spent and remaining ε and δ summed, and its dataset-wide cap.

    `cap_epsilon`/`cap_delta` are None for a dataset without a cap.
    """
    zero = Decimal(0)
    rows = Dataset.objects.annotate(
        users=Count("budgets"),
        initial_epsilon=Sum("budgets__initial_epsilon", default=zero),
        spent_epsilon=Sum("budgets__spent_epsilon", default=zero),
        initial_delta=Sum("budgets__initial_delta", default=zero),
        spent_delta=Sum("budgets__spent_delta", default=zero),
        cap_epsilon=F("total_budget__cap_epsilon"),
        cap_delta=F("total_budget__cap_delta"),
    ).order_by("name")
    return [
        {
            "dataset": dataset,
            "users": dataset.users,
            "spent_epsilon": dataset.spent_epsilon,
            "remaining_epsilon": dataset.initial_epsilon - dataset.spent_epsilon,
            "spent_delta": dataset.spent_delta,
            "remaining_delta": dataset.initial_delta - dataset.spent_delta,
            "cap_epsilon": dataset.cap_epsilon,
            "cap_delta": dataset.cap_delta,
        }
        for dataset in rows
    ]


def budgets_near_exhaustion(*, share: Decimal = NEAR_EXHAUSTION) -> list[dict[str, Any]]:
    """Budgets with at least `share` of their ε or δ spent, the most spent first."""
    budgets = (
        Budget.objects.select_related("user", "dataset")
        .filter(
            Q(initial_epsilon__gt=0, spent_epsilon__gte=F("initial_epsilon") * share)
            | Q(initial_delta__gt=0, spent_delta__gte=F("initial_delta") * share)
        )
        .order_by("user__username", "dataset__name")
    )
    rows = []
    for budget in budgets:
        epsilon_share = budget.spent_epsilon / budget.initial_epsilon if budget.initial_epsilon else Decimal(0)
        delta_share = budget.spent_delta / budget.initial_delta if budget.initial_delta else Decimal(0)
        rows.append(
            {
                "budget": budget,
                "epsilon_percent": round(epsilon_share * 100, 1),
                "delta_percent": round(delta_share * 100, 1),
            }
        )
    return sorted(rows, key=lambda row: -max(row["epsilon_percent"], row["delta_percent"]))


def jobs_needing_attention(*, limit: int = 10) -> list[Job]:
    """The newest jobs failed or still in progress."""
    return list(
        Job.objects.select_related("user", "dataset")
        .filter(status__in=(Job.Status.FAILED, Job.Status.IN_PROGRESS))
        .order_by("-created_at")[:limit]
    )
