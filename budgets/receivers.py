"""What budgets does when lower apps delete: a deleted user's budgets are revoked, a dataset with
budgets stays (its ledgers refer to it), and the audit entries keep the figures."""

from typing import Any

from django.dispatch import receiver

from accounts.models import User
from accounts.services import Actor
from accounts.signals import user_deleting
from budgets.selectors import budget_kept_to_wire, budget_snapshot_list, dataset_spent
from budgets.services import budget_revoke_all
from datasets.models import Dataset
from datasets.signals import dataset_deleting
from lomas.errors import InvalidQuery


@receiver(user_deleting, dispatch_uid="budgets.user_deleting")
def user_budgets_revoke(*, user: User, actor: Actor, **kwargs: Any) -> dict[str, Any]:
    """Revoke the user's budgets (their ledgers stay); the audit entry keeps them and what is spent."""
    budget_revoke_all(actor=actor, user=user)
    return {"budgets": budget_snapshot_list(user=user), "ledger_kept": budget_kept_to_wire(user=user)}


@receiver(dataset_deleting, dispatch_uid="budgets.dataset_deleting")
def dataset_budgets_keep(*, dataset: Dataset, **kwargs: Any) -> dict[str, Any]:
    """Refuse (400) to delete a dataset that has budgets: deleting it would erase their ledgers."""
    count = dataset.budgets.count()
    if count:
        spent = dataset_spent(dataset=dataset)
        raise InvalidQuery(
            f"Dataset {dataset.name} cannot be deleted: the ledgers of {count} budget(s) on it "
            f"(epsilon {float(spent.epsilon):g}, delta {float(spent.delta):g} spent in total) "
            "refer to it, and no ledger is ever erased."
        )
    return {}
