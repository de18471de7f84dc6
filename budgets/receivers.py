"""What budgets adds to the audit entries of lower apps: the budgets deleted with a user or a dataset."""

from typing import Any

from django.dispatch import receiver

from accounts.models import User
from accounts.signals import user_deleting
from budgets.selectors import budget_snapshot_list
from datasets.models import Dataset
from datasets.signals import dataset_deleting


@receiver(user_deleting, dispatch_uid="budgets.user_deleting")
def user_budgets_for_audit(*, user: User, **kwargs: Any) -> dict[str, Any]:
    """The user's budgets, as the audit entry of their deletion keeps them."""
    return {"budgets": budget_snapshot_list(user=user)}


@receiver(dataset_deleting, dispatch_uid="budgets.dataset_deleting")
def dataset_budgets_for_audit(*, dataset: Dataset, **kwargs: Any) -> dict[str, Any]:
    """The budgets on the dataset, as the audit entry of its deletion keeps them."""
    return {"budgets": budget_snapshot_list(dataset=dataset)}
