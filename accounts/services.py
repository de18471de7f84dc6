"""Writes on users and their lomas profile."""

from typing import Any

from django.db import transaction

from accounts.models import AuditEntry, LomasProfile, User
from lomas.errors import QUERY_IN_PROGRESS, InvalidQuery, UnauthorizedAccess


@transaction.atomic
def user_create(*, username: str, email: str = "", password: str | None = None, is_lomas_admin: bool = False) -> User:
    """Create a lomas user (with profile); lomas admins are staff superusers of Django admin."""
    if User.objects.filter(username=username).exists():
        raise InvalidQuery(f"User {username} already exists.")
    user = User(username=username, email=email, is_staff=is_lomas_admin, is_superuser=is_lomas_admin)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    LomasProfile.objects.create(user=user)
    return user


def user_claim_query_slot(*, user: User) -> None:
    """Take the user's single query slot, or refuse: one real query at a time per user.

    A compare-and-set on `may_query`: of two concurrent claims exactly one changes the row.
    """
    claimed = LomasProfile.objects.filter(user=user, may_query=True).update(may_query=False)
    if claimed != 1:
        raise UnauthorizedAccess(QUERY_IN_PROGRESS.format(user=user.username))


def user_release_query_slot(*, user: User) -> None:
    """Give the query slot back (after success or failure alike)."""
    LomasProfile.objects.filter(user=user).update(may_query=True)


def user_set_may_query(*, user: User, may_query: bool) -> None:
    """Set the query slot by hand (admins unblock a user whose worker crashed)."""
    LomasProfile.objects.filter(user=user).update(may_query=may_query)


# Who makes an administrative change: an account, or a system actor's name such as "manage.py".
Actor = User | str

# The name commands record as their actor.
COMMAND_ACTOR = "manage.py"


def audit_record(*, actor: Actor, action: str, target: str, details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one audit entry (call it inside the transaction of the change it records)."""
    account = actor if isinstance(actor, User) else None
    name = actor.username if isinstance(actor, User) else actor
    return AuditEntry.objects.create(
        actor=account, actor_name=name, action=action, target=target, details=details or {}
    )


@transaction.atomic
def user_add(*, actor: Actor, username: str, email: str = "", password: str | None = None) -> User:
    """Create a researcher (may query, no datasets), audited."""
    user = user_create(username=username, email=email, password=password)
    audit_record(actor=actor, action="user.add", target=username, details={"email": email})
    return user


@transaction.atomic
def user_delete(*, actor: Actor, user: User) -> None:
    """Delete a user with their budgets and ledgers; the audit entry keeps what the budgets held.

    Archived queries stay (under the user's name); jobs go with the user.
    """
    from budgets.selectors import budget_snapshot_list

    details = {"email": user.email, "budgets": budget_snapshot_list(user=user)}
    username = user.username
    user.delete()
    audit_record(actor=actor, action="user.delete", target=username, details=details)


@transaction.atomic
def user_change_may_query(*, actor: Actor, user: User, may_query: bool) -> None:
    """Set a user's query slot by hand (unblock a user whose query crashed), audited old → new."""
    old = LomasProfile.objects.select_for_update().get(user=user).may_query
    user_set_may_query(user=user, may_query=may_query)
    audit_record(actor=actor, action="user.set_may_query", target=user.username, details={"old": old, "new": may_query})


@transaction.atomic
def user_update_identity(*, actor: Actor, user: User, email: str, password: str | None = None) -> dict[str, Any]:
    """Change a user's email and (if given) password, audited; returns the changed fields."""
    changed: dict[str, Any] = {}
    if user.email != email:
        changed["email"] = {"old": user.email, "new": email}
        user.email = email
    if password is not None and not user.check_password(password):
        changed["password"] = {"changed": True}
        user.set_password(password)
    if changed:
        user.save(update_fields=["email", "password"])
        audit_record(actor=actor, action="user.update", target=user.username, details=changed)
    return changed


@transaction.atomic
def user_drop_all(*, actor: Actor, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Delete every researcher (lomas users who are not admins) except those named; returns their names.

    Lomas admins are kept so that dropping the users never locks the admins out.
    """
    users = list(
        User.objects.filter(lomas_profile__isnull=False, is_staff=False).exclude(username__in=keep).order_by("username")
    )
    for user in users:
        user_delete(actor=actor, user=user)
    return [user.username for user in users]
