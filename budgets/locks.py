"""Row locks on budgets: the only select_for_update on Budget lives here."""

from accounts.models import User
from budgets.models import Budget
from datasets.models import Dataset
from lomas.errors import NO_ACCESS, UnauthorizedAccess


def budget_lock(*, user: User, dataset: Dataset) -> Budget:
    """Lock and return the user's budget on the dataset; call inside transaction.atomic.

    On PostgreSQL this is a row lock (FOR NO KEY UPDATE, so ledger inserts that
    reference the row are not blocked); on SQLite the IMMEDIATE transaction already
    serialises writers.
    """
    try:
        return Budget.objects.select_for_update(no_key=True).order_by("pk").get(user=user, dataset=dataset)
    except Budget.DoesNotExist:
        raise UnauthorizedAccess(NO_ACCESS.format(user=user.username, dataset=dataset.name)) from None
