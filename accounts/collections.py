"""User collections (spec §4.1, §4.5): YAML files listing users and their budgets.

Two layouts exist and may be mixed in one file: lomas ≤0.4 names a user with
`user_name`, lomas 0.5 with `id: {name, email, client_secret}`. `client_secret`
becomes the user's sign-in password and is never output.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
class UserRecord:
    """One user of a collection, whichever layout it came in."""

    name: str
    email: str = ""
    client_secret: str | None = None
    may_query: bool = True
    budgets: list[BudgetRecord] = field(default_factory=list)


def user_records_from_collection(entries: list[Any]) -> list[UserRecord]:
    """Parse the `users` list of a collection (both layouts), or InvalidQuery naming the entry at fault."""
    records: list[UserRecord] = []
    for position, entry in enumerate(entries):
        record = _user_record(entry, where=f"users[{position}]")
        if any(other.name == record.name for other in records):
            raise InvalidQuery(f"Invalid collection: user {record.name} is listed twice.")
        records.append(record)
    return records


def user_to_wire(user: User) -> dict[str, Any]:
    """A lomas 0.5 User (spec §4.1), without any secret."""
    profile = getattr(user, "lomas_profile", None)
    return {
        "id": {"name": user.username, "email": user.email},
        "may_query": bool(profile and profile.may_query_now),
        "admin": user.is_staff,
        "datasets_list": [budget_to_wire(budget) for budget in budget_list_for_user(user=user)],
    }


def _user_record(entry: Any, *, where: str) -> UserRecord:
    if not isinstance(entry, dict):
        raise InvalidQuery(f"Invalid collection: {where} must be a mapping.")
    identity = entry.get("id")
    if isinstance(identity, dict):
        name, email, secret = identity.get("name"), identity.get("email", ""), identity.get("client_secret")
    elif "user_name" in entry:
        name, email, secret = entry["user_name"], entry.get("email", ""), entry.get("client_secret")
    else:
        raise InvalidQuery(f"Invalid collection: {where} needs 'id: {{name, email}}' or 'user_name'.")
    if not isinstance(name, str) or not name.strip():
        raise InvalidQuery(f"Invalid collection: {where} needs a non-empty user name.")
    if not isinstance(email, str) or (secret is not None and not isinstance(secret, str)):
        raise InvalidQuery(f"Invalid collection: user {name}: email and client_secret must be strings.")
    may_query = entry.get("may_query", True)
    if not isinstance(may_query, bool):
        raise InvalidQuery(f"Invalid collection: user {name}: may_query must be true or false.")
    budgets = entry.get("datasets_list") or []
    if not isinstance(budgets, list):
        raise InvalidQuery(f"Invalid collection: user {name}: datasets_list must be a list.")
    records = [_budget_record(budget, user=name) for budget in budgets]
    names = [record.dataset_name for record in records]
    if len(set(names)) != len(names):
        raise InvalidQuery(f"Invalid collection: user {name} lists a dataset twice.")
    return UserRecord(name=name, email=email, client_secret=secret, may_query=may_query, budgets=records)


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
