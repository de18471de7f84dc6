"""Row locks on budgets: the only select_for_update on Budget and DatasetBudget lives here.

A charge takes them in one fixed order, the dataset's total budget first, then the user's budget,
so two transactions never wait for each other in a cycle.
"""

from accounts.models import User
from budgets.models import Budget, DatasetBudget
from datasets.models import Dataset
from lomas.errors import NO_ACCESS, UnauthorizedAccess


def budget_lock(*, user: User, dataset: Dataset, include_revoked: bool = False) -> Budget:
    """Lock and return the user's budget on the dataset; call inside transaction.atomic.

    A revoked budget is no access (403) unless `include_revoked`. On PostgreSQL this is a row
    lock (FOR NO KEY UPDATE, so ledger inserts that reference the row are not blocked); on
    SQLite the IMMEDIATE transaction already serialises writers.
    """
    budgets = Budget.objects.select_for_update(no_key=True).order_by("pk").filter(user=user, dataset=dataset)
    if not include_revoked:
        budgets = budgets.filter(revoked_at=None)
    budget = budgets.first()
    if budget is None:
        raise UnauthorizedAccess(NO_ACCESS.format(user=user.username, dataset=dataset.name))
    return budget


def dataset_budget_lock(*, dataset: Dataset) -> DatasetBudget:
    """Lock and return the dataset's total budget row (created uncapped if missing); call inside transaction.atomic."""
    cap = DatasetBudget.objects.select_for_update(no_key=True).filter(dataset=dataset).first()
    if cap is None:  # the dataset's first charge or cap
        DatasetBudget.objects.get_or_create(dataset=dataset)
        cap = DatasetBudget.objects.select_for_update(no_key=True).get(dataset=dataset)
    return cap
