"""User collections (spec §4.1, §4.5): the identity part of the YAML files listing users.

Two layouts exist and may be mixed in one file: lomas ≤0.4 names a user with
`user_name`, lomas 0.5 with `id: {name, email, client_secret}`. `client_secret`
becomes the user's sign-in password and is never output. The budgets of each
entry (`datasets_list`) are read by budgets/collections.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lomas.errors import InvalidQuery

Record = TypeVar("Record", bound="UserRecord")


@dataclass(frozen=True)
class UserRecord:
    """One user of a collection, whichever layout it came in."""

    name: str
    email: str = ""
    client_secret: str | None = None
    may_query: bool = True


def user_records_from_collection(entries: list[Any]) -> list[UserRecord]:
    """Parse the users of a collection (both layouts), or InvalidQuery naming the entry at fault."""
    return collection_users(entries, user_record)


def collection_users(entries: list[Any], parse: Callable[..., Record]) -> list[Record]:
    """Each entry of a collection's `users` list read by `parse(entry, where=...)`; a name listed twice
    is an InvalidQuery. Higher apps pass a parser that reads more of each entry (budgets)."""
    records: list[Record] = []
    for position, entry in enumerate(entries):
        record = parse(entry, where=f"users[{position}]")
        if any(other.name == record.name for other in records):
            raise InvalidQuery(f"Invalid collection: user {record.name} is listed twice.")
        records.append(record)
    return records


def user_record(entry: Any, *, where: str) -> UserRecord:
    """One entry of a collection's `users` list, without its budgets, or InvalidQuery."""
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
    return UserRecord(name=name, email=email, client_secret=secret, may_query=may_query)
