"""Writes on budgets. Every change of a spent amount is a ledger row written in the
same transaction that holds the budget's row lock."""

import logging
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import Actor, audit_record
from budgets.amounts import Amounts, to_amount
from budgets.collections import BudgetRecord, UserBudgetsRecord
from budgets.locks import budget_lock, dataset_budget_lock
from budgets.models import Budget, DatasetBudget, LedgerEntry
from budgets.selectors import (
    budget_kept_to_wire,
    budget_snapshot,
    dataset_budget_check,
    dataset_cap,
    dataset_spent,
)
from datasets.models import Dataset
from lomas import metrics, tracing
from lomas.errors import InvalidQuery, JobAlreadyCharged, NotEnoughBudget

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
    """Give a user access to a dataset with an initial budget (and, for imports, an amount already spent).

    A revoked budget is granted again: its ledger stays, what it has spent is the larger of the
    ledger's amount and the given one (the difference is seeded), and its initial amounts are
    never below that, so access granted anew never forgets a spend.
    """
    initial, spent = Amounts.of(epsilon, delta), Amounts.of(spent_epsilon, spent_delta)
    if spent.epsilon > initial.epsilon or spent.delta > initial.delta:
        raise InvalidQuery("The spent budget cannot exceed the initial budget.")
    if not Budget.objects.filter(user=user, dataset=dataset).exists():
        budget = Budget.objects.create(user=user, dataset=dataset, initial_epsilon=0, initial_delta=0)
    elif not (budget := budget_lock(user=user, dataset=dataset, include_revoked=True)).is_revoked:
        raise InvalidQuery(f"{user.username} already has access to {dataset.name}.")
    else:
        initial = Amounts(max(initial.epsilon, budget.spent_epsilon), max(initial.delta, budget.spent_delta))
    budget.revoked_at = None
    change = Amounts(initial.epsilon - budget.initial_epsilon, initial.delta - budget.initial_delta)
    _grant(budget=budget, change=change, note="access granted")
    _seed_up_to(budget=budget, spent=spent)
    return budget


def _seed_up_to(*, budget: Budget, spent: Amounts) -> None:
    """Seed the spent amounts up to `spent` where the ledger holds less (the caller holds the lock)."""
    missing = Amounts(max(spent.epsilon - budget.spent_epsilon, 0), max(spent.delta - budget.spent_delta, 0))
    if missing.epsilon or missing.delta:
        _append(budget=budget, kind=LedgerEntry.Kind.SEED, amounts=missing, note="spent before import")


@transaction.atomic
def budget_set_initial(
    *, user: User, dataset: Dataset, epsilon: float | Decimal | None = None, delta: float | Decimal | None = None
) -> Budget:
    """Set the initial epsilon and/or delta, as a grant row of the difference; never below what is spent."""
    budget = budget_lock(user=user, dataset=dataset)
    new_epsilon = budget.initial_epsilon if epsilon is None else to_amount(epsilon)
    new_delta = budget.initial_delta if delta is None else to_amount(delta)
    if new_epsilon < budget.spent_epsilon or new_delta < budget.spent_delta:
        raise InvalidQuery(
            f"The initial budget cannot be set below the spent budget "
            f"(epsilon {budget.spent_epsilon}, delta {budget.spent_delta})."
        )
    change = Amounts(new_epsilon - budget.initial_epsilon, new_delta - budget.initial_delta)
    _grant(budget=budget, change=change, note="initial budget set")
    return budget


@tracing.traced("budget.charge")
@transaction.atomic
def budget_charge(*, user: User, dataset: Dataset, epsilon: float, delta: float, job_uid: UUID) -> LedgerEntry:
    """Charge a query's cost: lock the dataset's total then the budget, check both, append to the ledger.

    Equality passes (spec §2.2). Raises NotEnoughBudget (DatasetBudgetExhausted when the dataset's
    cap is the limit) and charges nothing otherwise, and JobAlreadyCharged for a job already in the
    ledger (a database constraint backs this up).
    """
    tracing.annotate(user=user.username, dataset=dataset.name, job=job_uid, epsilon=epsilon, delta=delta)
    cost = Amounts.of(epsilon, delta)
    cap = dataset_budget_lock(dataset=dataset)
    budget = budget_lock(user=user, dataset=dataset)
    if LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, job_uid=job_uid).exists():
        raise JobAlreadyCharged(f"job {job_uid} is already charged")
    if budget.remaining_epsilon < cost.epsilon or budget.remaining_delta < cost.delta:
        raise NotEnoughBudget(epsilon=float(budget.remaining_epsilon), delta=float(budget.remaining_delta))
    dataset_budget_check(dataset=dataset, cap=cap, cost=cost)
    entry = _append(budget=budget, kind=LedgerEntry.Kind.CHARGE, amounts=cost, job_uid=job_uid)
    metrics.record_budget_spent(dataset=dataset.name, epsilon=cost.epsilon, delta=cost.delta)
    logger.info(
        "charged %s on %s: epsilon %s, delta %s (job %s)",
        user.username,
        dataset.name,
        cost.epsilon,
        cost.delta,
        job_uid,
    )
    return entry


@tracing.traced("ledger.write")
def _append(*, budget: Budget, kind: str, amounts: Amounts, job_uid: UUID | None = None, note: str = "") -> LedgerEntry:
    """Append a spending row (charge, seed, adjustment) and move the spent amounts (the caller holds the lock)."""
    entry = LedgerEntry.objects.create(
        budget=budget, kind=kind, epsilon=amounts.epsilon, delta=amounts.delta, job_uid=job_uid, note=note
    )
    budget.spent_epsilon += amounts.epsilon
    budget.spent_delta += amounts.delta
    budget.save(update_fields=["spent_epsilon", "spent_delta"])
    return entry


def _grant(*, budget: Budget, change: Amounts, note: str) -> None:
    """Move the initial amounts by `change` (negative to lower them) with a grant row, none for no change,
    and save the budget's access (the caller holds the lock)."""
    if change.epsilon or change.delta:
        LedgerEntry.objects.create(
            budget=budget, kind=LedgerEntry.Kind.GRANT, epsilon=change.epsilon, delta=change.delta, note=note
        )
        budget.initial_epsilon += change.epsilon
        budget.initial_delta += change.delta
    budget.save(update_fields=["initial_epsilon", "initial_delta", "revoked_at"])


# The budget fields an admin may set (spec §6.2 set_budget_field).
SETTABLE_BUDGET_FIELDS = ("initial_epsilon", "initial_delta")


def _require_amounts(**values: float | Decimal | None) -> None:
    """Refuse (400) a negative, infinite or non-numeric privacy amount before anything is written."""
    for name, value in values.items():
        if value is None:
            continue
        try:
            to_amount(value)
        except (TypeError, ValueError, ArithmeticError):
            raise InvalidQuery(f"{name} must be a finite non-negative number, not {value!r}.") from None


def _audit(*, actor: Actor, action: str, budget: Budget, details: dict[str, Any]) -> None:
    audit_record(actor=actor, action=action, target=f"{budget.user.username}/{budget.dataset.name}", details=details)


@transaction.atomic
def budget_add_access(
    *,
    actor: Actor,
    user: User,
    dataset: Dataset,
    epsilon: float | Decimal = 0,
    delta: float | Decimal = 0,
    spent_epsilon: float | Decimal = 0,
    spent_delta: float | Decimal = 0,
) -> Budget:
    """Give a user access to a dataset (initial budget 0/0 unless given), audited."""
    _require_amounts(epsilon=epsilon, delta=delta, spent_epsilon=spent_epsilon, spent_delta=spent_delta)
    budget = budget_grant(
        user=user, dataset=dataset, epsilon=epsilon, delta=delta, spent_epsilon=spent_epsilon, spent_delta=spent_delta
    )
    _audit(
        actor=actor,
        action="budget.grant",
        budget=budget,
        details={
            "initial_epsilon": float(budget.initial_epsilon),
            "initial_delta": float(budget.initial_delta),
            "spent_epsilon": float(budget.spent_epsilon),
            "spent_delta": float(budget.spent_delta),
        },
    )
    return budget


@transaction.atomic
def budget_revoke(*, actor: Actor, user: User, dataset: Dataset) -> Budget:
    """End a user's access to a dataset, audited: the budget is marked revoked, its ledger stays.

    Granted again, the budget carries what it has spent.
    """
    budget = budget_lock(user=user, dataset=dataset)
    budget.revoked_at = timezone.now()
    budget.save(update_fields=["revoked_at"])
    _audit(actor=actor, action="budget.revoke", budget=budget, details=budget_snapshot(budget=budget))
    return budget


@transaction.atomic
def budget_revoke_all(*, actor: Actor, user: User) -> None:
    """Revoke every access of a user (when the user is deleted), each audited."""
    for budget in Budget.objects.filter(user=user, revoked_at=None).select_related("dataset").order_by("pk"):
        budget_revoke(actor=actor, user=user, dataset=budget.dataset)


@transaction.atomic
def budget_change_initial(
    *,
    actor: Actor,
    user: User,
    dataset: Dataset,
    epsilon: float | Decimal | None = None,
    delta: float | Decimal | None = None,
) -> Budget:
    """Set the initial epsilon and/or delta (never below what is spent), audited old → new."""
    _require_amounts(epsilon=epsilon, delta=delta)
    old = budget_lock(user=user, dataset=dataset)
    before = {"initial_epsilon": float(old.initial_epsilon), "initial_delta": float(old.initial_delta)}
    budget = budget_set_initial(user=user, dataset=dataset, epsilon=epsilon, delta=delta)
    after = {"initial_epsilon": float(budget.initial_epsilon), "initial_delta": float(budget.initial_delta)}
    _audit(actor=actor, action="budget.set_initial", budget=budget, details={"old": before, "new": after})
    return budget


@transaction.atomic
def budget_top_up(
    *, actor: Actor, user: User, dataset: Dataset, epsilon: float | Decimal = 0, delta: float | Decimal = 0
) -> Budget:
    """Add epsilon and delta to the initial budget (what is spent stays), audited old → new."""
    _require_amounts(epsilon=epsilon, delta=delta)
    added = Amounts.of(epsilon, delta)
    budget = budget_lock(user=user, dataset=dataset)
    before = {"initial_epsilon": float(budget.initial_epsilon), "initial_delta": float(budget.initial_delta)}
    _grant(budget=budget, change=added, note="top-up")
    after = {"initial_epsilon": float(budget.initial_epsilon), "initial_delta": float(budget.initial_delta)}
    details = {"old": before, "new": after, "added": {"epsilon": float(added.epsilon), "delta": float(added.delta)}}
    _audit(actor=actor, action="budget.top_up", budget=budget, details=details)
    return budget


@transaction.atomic
def user_collection_load(
    *,
    actor: Actor,
    records: list[UserBudgetsRecord],
    clean: bool = False,
    overwrite: bool = False,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Load a user collection in one transaction and return the changes made.

    New users are added with their budgets (spent amounts become SEED ledger entries). An
    existing user is left as is unless `overwrite`: then their email, password (client_secret),
    may_query and the initial budgets of the listed datasets are set, and budgets they lack are
    granted; unlisted budgets stay. `clean` deletes (tombstones) the researchers absent from the
    file and overwrites the listed ones. Nothing is erased from the ledger: what a budget has spent
    is the larger of the ledger's amount and the file's, a deleted user keeps their ledger, and one
    added again carries it. A deleted or re-added user's change names in `kept` the spent amounts
    the ledger keeps for them. With `dry_run` everything is
    rolled back and the changes are only reported.
    """
    from accounts.services import user_add, user_change_may_query, user_drop_all, user_update_identity

    names = {record.name for record in records}
    datasets = {dataset.name: dataset for dataset in Dataset.objects.all()}
    for record in records:
        unknown = [budget.dataset_name for budget in record.budgets if budget.dataset_name not in datasets]
        if unknown:
            raise InvalidQuery(f"User {record.name}: dataset {unknown[0]} does not exist.")
    changes: list[dict[str, Any]] = []
    if clean:
        for name in user_drop_all(actor=actor, keep=names):
            kept = budget_kept_to_wire(user=User.objects.get(username=name))
            changes.append({"action": "delete", "collection": "users", "name": name, **_kept(kept)})
    for record in records:
        user = User.objects.filter(username=record.name, lomas_profile__isnull=False).first()
        if user is None:
            user = user_add(actor=actor, username=record.name, email=record.email, password=record.client_secret)
            kept = budget_kept_to_wire(user=user)
            if not record.may_query:
                user_change_may_query(actor=actor, user=user, may_query=False)
            for entry in record.budgets:
                _budget_grant_entry(actor=actor, user=user, dataset=datasets[entry.dataset_name], entry=entry)
            changes.append({"action": "add", "collection": "users", "name": record.name, **_kept(kept)})
            continue
        if not (overwrite or clean):
            changes.append({"action": "keep", "collection": "users", "name": record.name, "fields": []})
            continue
        fields = list(user_update_identity(actor=actor, user=user, email=record.email, password=record.client_secret))
        if hasattr(user, "lomas_profile") and user.lomas_profile.may_query != record.may_query:
            user_change_may_query(actor=actor, user=user, may_query=record.may_query)
            fields.append("may_query")
        fields += _budgets_overwrite(actor=actor, user=user, record=record, datasets=datasets)
        action = "update" if fields else "keep"
        changes.append({"action": action, "collection": "users", "name": record.name, "fields": fields})
    if dry_run:
        transaction.set_rollback(True)
    return changes


def _kept(kept: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kept": kept} if kept else {}


def _budget_grant_entry(*, actor: Actor, user: User, dataset: Dataset, entry: BudgetRecord) -> Budget:
    return budget_add_access(
        actor=actor,
        user=user,
        dataset=dataset,
        epsilon=entry.initial_epsilon,
        delta=entry.initial_delta,
        spent_epsilon=entry.spent_epsilon,
        spent_delta=entry.spent_delta,
    )


def _budgets_overwrite(
    *, actor: Actor, user: User, record: UserBudgetsRecord, datasets: dict[str, Dataset]
) -> list[str]:
    changed = []
    for entry in record.budgets:
        dataset = datasets[entry.dataset_name]
        budget = Budget.objects.filter(user=user, dataset=dataset, revoked_at=None).first()
        if budget is None:
            _budget_grant_entry(actor=actor, user=user, dataset=dataset, entry=entry)
            changed.append(f"budget {dataset.name} granted")
            continue
        if (budget.initial_epsilon, budget.initial_delta) != (entry.initial_epsilon, entry.initial_delta):
            budget_change_initial(
                actor=actor, user=user, dataset=dataset, epsilon=entry.initial_epsilon, delta=entry.initial_delta
            )
            changed.append(f"budget {dataset.name} initial")
        if entry.spent_epsilon > budget.spent_epsilon or entry.spent_delta > budget.spent_delta:
            budget_raise_spent(
                actor=actor, user=user, dataset=dataset, epsilon=entry.spent_epsilon, delta=entry.spent_delta
            )
            changed.append(f"budget {dataset.name} spent")
    return changed


@transaction.atomic
def budget_raise_spent(*, actor: Actor, user: User, dataset: Dataset, epsilon: Decimal, delta: Decimal) -> Budget:
    """Seed a budget's spent amounts up to the given ones where its ledger holds less (never lowered), audited."""
    budget = budget_lock(user=user, dataset=dataset)
    before = {"spent_epsilon": float(budget.spent_epsilon), "spent_delta": float(budget.spent_delta)}
    _seed_up_to(budget=budget, spent=Amounts(epsilon, delta))
    after = {"spent_epsilon": float(budget.spent_epsilon), "spent_delta": float(budget.spent_delta)}
    _audit(actor=actor, action="budget.seed", budget=budget, details={"old": before, "new": after})
    return budget


@transaction.atomic
def user_add_with_budget(
    *,
    actor: Actor,
    username: str,
    email: str,
    password: str | None,
    dataset: Dataset,
    epsilon: float | Decimal,
    delta: float | Decimal,
) -> User:
    """Create a researcher with access to one dataset, audited, in one transaction."""
    from accounts.services import user_add

    user = user_add(actor=actor, username=username, email=email, password=password)
    budget_add_access(actor=actor, user=user, dataset=dataset, epsilon=epsilon, delta=delta)
    return user


@transaction.atomic
def dataset_budget_set(
    *, actor: Actor, dataset: Dataset, epsilon: float | Decimal, delta: float | Decimal
) -> DatasetBudget:
    """Cap what all researchers together may spend on a dataset, never below what they spent, audited old → new.

    The cap row is locked as every charge locks it, so the total read here is final.
    """
    _require_amounts(epsilon=epsilon, delta=delta)
    new = Amounts.of(epsilon, delta)
    cap = dataset_budget_lock(dataset=dataset)
    spent = dataset_spent(dataset=dataset)
    if new.epsilon < spent.epsilon or new.delta < spent.delta:
        raise InvalidQuery(
            f"The budget of dataset {dataset.name} cannot be set below what its researchers spent in total "
            f"(epsilon {float(spent.epsilon):g}, delta {float(spent.delta):g})."
        )
    old = dataset_cap(cap=cap)
    cap.cap_epsilon, cap.cap_delta = new.epsilon, new.delta
    cap.save(update_fields=["cap_epsilon", "cap_delta", "updated_at"])
    audit_record(
        actor=actor,
        action="dataset.set_budget",
        target=dataset.name,
        details={
            "old": {"epsilon": float(old.epsilon), "delta": float(old.delta)} if old else None,
            "new": {"epsilon": float(new.epsilon), "delta": float(new.delta)},
        },
    )
    return cap
