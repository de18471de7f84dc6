"""Privacy budgets and the ledger of everything charged to them.

A Budget row is also the access right: a user may query a dataset only if an
unrevoked budget row links them. Amounts are exact decimals, so ten charges of 0.1
exhaust a budget of 1.0 exactly. The ledger alone explains every budget: the initial
amounts are the sum of its grants, the spent amounts the sum of its other rows. No
row of it is ever removed: budgets are revoked, not deleted, and the foreign keys
refuse (PROTECT) any deletion that would cascade to them.
"""

from decimal import Decimal
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from lomas.amounts import delta_short, epsilon_short

# Wide enough for any float a DP library reports (0.1 is stored as exactly 0.1).
AMOUNT = {"max_digits": 40, "decimal_places": 28}


class Budget(models.Model):
    """The (epsilon, delta) a user may spend on a dataset, and what they spent."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="budgets")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="budgets")
    initial_epsilon = models.DecimalField(**AMOUNT)
    initial_delta = models.DecimalField(**AMOUNT)
    spent_epsilon = models.DecimalField(**AMOUNT, default=Decimal(0))
    spent_delta = models.DecimalField(**AMOUNT, default=Decimal(0))
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when access is revoked (or its user deleted): the budget and its ledger stay, unusable.
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user__username", "dataset__name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "dataset"], name="budget_one_per_user_and_dataset"),
            models.CheckConstraint(
                condition=Q(initial_epsilon__gte=0)
                & Q(initial_delta__gte=0)
                & Q(spent_epsilon__gte=0)
                & Q(spent_delta__gte=0),
                name="budget_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(spent_epsilon__lte=F("initial_epsilon")) & Q(spent_delta__lte=F("initial_delta")),
                name="budget_spent_within_initial",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.dataset}"

    @property
    def is_revoked(self) -> bool:
        """Whether access was revoked (the spent amounts stay)."""
        return self.revoked_at is not None

    @property
    def remaining_epsilon(self) -> Decimal:
        """Initial minus spent epsilon."""
        return self.initial_epsilon - self.spent_epsilon

    @property
    def remaining_delta(self) -> Decimal:
        """Initial minus spent delta."""
        return self.initial_delta - self.spent_delta


class AppendOnlyQuerySet(models.QuerySet):
    """Ledger rows are written once and never changed or removed by the application."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise TypeError("The budget ledger is append-only: ledger rows cannot be updated.")

    def delete(self) -> NoReturn:
        raise TypeError("The budget ledger is append-only: ledger rows cannot be deleted.")


class LedgerEntry(models.Model):
    """One movement of a budget: a grant (of initial amounts), a charge, an initial seed or an adjustment."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Budget granted"
        CHARGE = "charge", "Query charge"
        SEED = "seed", "Already spent when imported"
        ADJUST = "adjust", "Adjustment"

    # What a budget has spent: the sum of every row of these kinds.
    SPENDING = (Kind.CHARGE, Kind.SEED, Kind.ADJUST)

    budget = models.ForeignKey(Budget, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    epsilon = models.DecimalField(**AMOUNT)
    delta = models.DecimalField(**AMOUNT)
    job_uid = models.UUIDField(null=True, blank=True, db_index=True)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "ledger entries"
        constraints = [
            # A job is charged at most once, even if its task is delivered twice.
            models.UniqueConstraint(fields=["job_uid"], condition=Q(kind="charge"), name="ledger_one_charge_per_job"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ε={epsilon_short(self.epsilon)} δ={delta_short(self.delta)} on {self.budget}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("The budget ledger is append-only: ledger rows cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("The budget ledger is append-only: ledger rows cannot be deleted.")


class DatasetBudget(models.Model):
    """A dataset's total (epsilon, delta) over all its researchers together, if capped.

    Every charge on the dataset locks this row before the budget's row (one fixed order), so
    the total spent (the sum of the spent amounts of every budget on it, revoked ones included)
    never exceeds the cap, whatever charges run at the same time.
    """

    dataset = models.OneToOneField("datasets.Dataset", on_delete=models.PROTECT, related_name="total_budget")
    # No cap while both are null.
    cap_epsilon = models.DecimalField(**AMOUNT, null=True, blank=True)
    cap_delta = models.DecimalField(**AMOUNT, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dataset__name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cap_epsilon__isnull=True, cap_delta__isnull=True)
                | Q(cap_epsilon__isnull=False, cap_delta__isnull=False, cap_epsilon__gte=0, cap_delta__gte=0),
                name="dataset_budget_cap_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"total budget of {self.dataset}"
