"""Writes on budgets. Every change of a spent amount is a ledger row written in the
same transaction that holds the budget's row lock."""

import logging
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction

from accounts.models import User
from accounts.services import Actor, audit_record
from budgets.amounts import Amounts, to_amount
from budgets.collections import UserBudgetsRecord
from budgets.locks import budget_lock
from budgets.models import Budget, LedgerEntry
from budgets.selectors import budget_snapshot
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


@tracing.traced("budget.charge")
@transaction.atomic
def budget_charge(*, user: User, dataset: Dataset, epsilon: float, delta: float, job_uid: UUID) -> LedgerEntry:
    """Charge a query's cost: lock, check the remaining budget, append to the ledger.

    Equality passes (spec §2.2). Raises NotEnoughBudget and charges nothing otherwise, and
    JobAlreadyCharged for a job already in the ledger (a database constraint backs this up).
    """
    tracing.annotate(user=user.username, dataset=dataset.name, job=job_uid, epsilon=epsilon, delta=delta)
    cost = Amounts.of(epsilon, delta)
    budget = budget_lock(user=user, dataset=dataset)
    if LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, job_uid=job_uid).exists():
        raise JobAlreadyCharged(f"job {job_uid} is already charged")
    if budget.remaining_epsilon < cost.epsilon or budget.remaining_delta < cost.delta:
        raise NotEnoughBudget(epsilon=float(budget.remaining_epsilon), delta=float(budget.remaining_delta))
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
    """Append a ledger row and move the spent amounts with it (the caller holds the lock)."""
    entry = LedgerEntry.objects.create(
        budget=budget, kind=kind, epsilon=amounts.epsilon, delta=amounts.delta, job_uid=job_uid, note=note
    )
    budget.spent_epsilon += amounts.epsilon
    budget.spent_delta += amounts.delta
    budget.save(update_fields=["spent_epsilon", "spent_delta"])
    return entry


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
    audit_record(
        actor=actor,
        action="budget.grant",
        target=f"{user.username}/{dataset.name}",
        details={
            "initial_epsilon": float(budget.initial_epsilon),
            "initial_delta": float(budget.initial_delta),
            "spent_epsilon": float(budget.spent_epsilon),
            "spent_delta": float(budget.spent_delta),
        },
    )
    return budget


@transaction.atomic
def budget_revoke(*, actor: Actor, user: User, dataset: Dataset, force: bool = False) -> None:
    """Remove a user's access to a dataset.

    Deleting a budget deletes its ledger, and granting again would start from nothing
    spent: a budget with spent amounts is only revoked with `force`, and the audit
    entry then keeps the budget's figures and its whole ledger.
    """
    budget = budget_lock(user=user, dataset=dataset)
    if (budget.spent_epsilon or budget.spent_delta) and not force:
        raise InvalidQuery(
            f"{user.username} has already spent epsilon {budget.spent_epsilon}, delta {budget.spent_delta} "
            f"on {dataset.name}: revoking would delete its ledger (force the revocation to do it anyway)."
        )
    snapshot = budget_snapshot(budget=budget)
    budget.delete()
    audit_record(actor=actor, action="budget.revoke", target=f"{user.username}/{dataset.name}", details=snapshot)


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
    audit_record(
        actor=actor,
        action="budget.set_initial",
        target=f"{user.username}/{dataset.name}",
        details={"old": before, "new": after},
    )
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
    budget.initial_epsilon += added.epsilon
    budget.initial_delta += added.delta
    budget.save(update_fields=["initial_epsilon", "initial_delta"])
    after = {"initial_epsilon": float(budget.initial_epsilon), "initial_delta": float(budget.initial_delta)}
    audit_record(
        actor=actor,
        action="budget.top_up",
        target=f"{user.username}/{dataset.name}",
        details={"old": before, "new": after, "added": {"epsilon": float(added.epsilon), "delta": float(added.delta)}},
    )
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

    New users are added with their budgets (spent amounts become SEED ledger entries).
    An existing user is left as is unless `overwrite`: then their email, password
    (client_secret), may_query and the initial budgets of the listed datasets are set,
    and budgets they lack are granted; spent amounts of existing budgets always stay
    those of the ledger, and unlisted budgets stay. `clean` deletes the researchers
    absent from the file and overwrites the listed ones. With `dry_run` everything is
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
        changes += [
            {"action": "delete", "collection": "users", "name": name} for name in user_drop_all(actor=actor, keep=names)
        ]
    for record in records:
        user = User.objects.filter(username=record.name).first()
        if user is None:
            user = user_add(actor=actor, username=record.name, email=record.email, password=record.client_secret)
            if not record.may_query:
                user_change_may_query(actor=actor, user=user, may_query=False)
            for budget in record.budgets:
                budget_add_access(
                    actor=actor,
                    user=user,
                    dataset=datasets[budget.dataset_name],
                    epsilon=budget.initial_epsilon,
                    delta=budget.initial_delta,
                    spent_epsilon=budget.spent_epsilon,
                    spent_delta=budget.spent_delta,
                )
            changes.append({"action": "add", "collection": "users", "name": record.name})
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


def _budgets_overwrite(
    *, actor: Actor, user: User, record: UserBudgetsRecord, datasets: dict[str, Dataset]
) -> list[str]:
    changed = []
    for entry in record.budgets:
        dataset = datasets[entry.dataset_name]
        budget = Budget.objects.filter(user=user, dataset=dataset).first()
        if budget is None:
            budget_add_access(
                actor=actor,
                user=user,
                dataset=dataset,
                epsilon=entry.initial_epsilon,
                delta=entry.initial_delta,
                spent_epsilon=entry.spent_epsilon,
                spent_delta=entry.spent_delta,
            )
            changed.append(f"budget {dataset.name} granted")
        elif (budget.initial_epsilon, budget.initial_delta) != (entry.initial_epsilon, entry.initial_delta):
            budget_change_initial(
                actor=actor, user=user, dataset=dataset, epsilon=entry.initial_epsilon, delta=entry.initial_delta
            )
            changed.append(f"budget {dataset.name} initial")
    return changed


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
