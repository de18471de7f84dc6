"""User collections with budgets (spec §4.1, §4.5), and the lomas User with its budgets.

accounts/collections.py reads who each entry is; this module adds the entry's
`datasets_list`: initial and already spent amounts on each dataset.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from accounts.collections import UserRecord, collection_users, user_record
from accounts.models import User
from budgets.amounts import to_amount
from budgets.selectors import budget_list_for_user, budget_to_wire
from lomas.errors import InvalidQuery

_AMOUNT_FIELDS = ("initial_epsilon", "initial_delta", "total_spent_epsilon", "total_spent_delta")


@dataclass(frozen=True)
class BudgetRecord:
    """One `datasets_list` entry: initial and already spent amounts on a dataset."""

    dataset_name: str
    initial_epsilon: Decimal
    initial_delta: Decimal
    spent_epsilon: Decimal
    spent_delta: Decimal


@dataclass(frozen=True)
class UserBudgetsRecord(UserRecord):
    """One user of a collection with the budgets it lists."""

    budgets: list[BudgetRecord] = field(default_factory=list)


def user_budget_records_from_collection(entries: list[Any]) -> list[UserBudgetsRecord]:
    """Parse the `users` list of a collection (both layouts), or InvalidQuery naming the entry at fault."""
    return collection_users(entries, _user_budgets_record)


def user_to_wire(user: User) -> dict[str, Any]:
    """A lomas 0.5 User (spec §4.1) with its budgets, without any secret."""
    profile = getattr(user, "lomas_profile", None)
    return {
        "id": {"name": user.username, "email": user.email},
        "may_query": bool(profile and profile.may_query_now),
        "admin": user.is_staff,
        "datasets_list": [budget_to_wire(budget) for budget in budget_list_for_user(user=user)],
    }


def _user_budgets_record(entry: Any, *, where: str) -> UserBudgetsRecord:
    identity = user_record(entry, where=where)
    name = identity.name
    budgets = entry.get("datasets_list") or []
    if not isinstance(budgets, list):
        raise InvalidQuery(f"Invalid collection: user {name}: datasets_list must be a list.")
    records = [_budget_record(budget, user=name) for budget in budgets]
    names = [record.dataset_name for record in records]
    if len(set(names)) != len(names):
        raise InvalidQuery(f"Invalid collection: user {name} lists a dataset twice.")
    return UserBudgetsRecord(**vars(identity), budgets=records)


def _budget_record(entry: Any, *, user: str) -> BudgetRecord:
    if not isinstance(entry, dict) or not isinstance(entry.get("dataset_name"), str):
        raise InvalidQuery(f"Invalid collection: user {user}: each datasets_list entry needs a dataset_name.")
    dataset = entry["dataset_name"]
    amounts = {}
    for name in _AMOUNT_FIELDS:
        value = entry.get(name, 0 if name.startswith("total_spent") else None)
        if value is None:
            raise InvalidQuery(f"Invalid collection: user {user}, dataset {dataset}: {name} is required.")
        try:
            if isinstance(value, bool):
                raise TypeError(name)
            amounts[name] = to_amount(value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidQuery(
                f"Invalid collection: user {user}, dataset {dataset}: {name} must be a non-negative number."
            ) from exc
    if amounts["total_spent_epsilon"] > amounts["initial_epsilon"] or (
        amounts["total_spent_delta"] > amounts["initial_delta"]
    ):
        raise InvalidQuery(f"Invalid collection: user {user}, dataset {dataset}: spent exceeds the initial budget.")
    return BudgetRecord(
        dataset_name=dataset,
        initial_epsilon=amounts["initial_epsilon"],
        initial_delta=amounts["initial_delta"],
        spent_epsilon=amounts["total_spent_epsilon"],
        spent_delta=amounts["total_spent_delta"],
    )
