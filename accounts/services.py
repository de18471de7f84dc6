"""Writes on users and their lomas profile."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import AccessToken, DeviceGrant, Grant, IDToken, RefreshToken

from accounts.bootstrap import BOOTSTRAP_NAME, BootstrapGone
from accounts.models import AuditEntry, BootstrapState, LomasProfile, User
from accounts.selectors import bootstrap_is_active
from accounts.signals import user_deleting
from lomas.errors import QUERY_IN_PROGRESS, InvalidQuery, UnauthorizedAccess


@transaction.atomic
def user_create(*, username: str, email: str = "", password: str | None = None, is_lomas_admin: bool = False) -> User:
    """Create a lomas user (with profile); lomas admins are staff superusers of Django admin.

    A deleted user's name gives their tombstone back to life, so that they keep their ledgers.
    """
    user = User.objects.filter(username=username).first()
    if user is not None and user.deleted_at is None:
        raise InvalidQuery(f"User {username} already exists.")
    user = user or User(username=username)
    user.email, user.is_active, user.deleted_at = email, True, None
    user.is_staff = user.is_superuser = is_lomas_admin
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    LomasProfile.objects.create(user=user)
    return user


def user_claim_query_slot(*, user: User, job_uid: UUID) -> None:
    """Take the user's single query slot for a job, under a lease, or refuse: one real query at a time.

    A compare-and-set on the profile row: of two concurrent claims exactly one changes it. A slot
    whose lease is over (its worker died) is taken over; one closed by an admin (no lease) is not.
    """
    now = timezone.now()
    claimed = LomasProfile.objects.filter(Q(may_query=True) | Q(query_lease_until__lte=now), user=user).update(
        may_query=False,
        query_lease_job=job_uid,
        query_lease_until=now + timedelta(seconds=settings.LOMAS_QUERY_LEASE_SECONDS),
    )
    if claimed != 1:
        raise UnauthorizedAccess(QUERY_IN_PROGRESS.format(user=user.username))


def user_release_query_slot(*, user: User, job_uid: UUID) -> bool:
    """Give back the slot the job holds (after success or failure alike); whether it held it.

    A job whose lease was taken over, or that an admin released, leaves the slot alone.
    """
    released = LomasProfile.objects.filter(user=user, query_lease_job=job_uid).update(
        may_query=True, query_lease_job=None, query_lease_until=None
    )
    return released == 1


def user_renew_query_slot(*, user: User, job_uid: UUID, until: datetime) -> bool:
    """Extend the lease of the slot the job holds to `until` (its heartbeat); whether it still held it."""
    return LomasProfile.objects.filter(user=user, query_lease_job=job_uid).update(query_lease_until=until) == 1


def user_lock(*, user: User) -> None:
    """Lock the user's row until the caller's transaction ends: checks made on their behalf under it are serialized."""
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


def user_set_may_query(*, user: User, may_query: bool) -> None:
    """Open or close the query slot by hand (admins unblock a user whose worker crashed), ending any lease."""
    LomasProfile.objects.filter(user=user).update(may_query=may_query, query_lease_job=None, query_lease_until=None)


# Who makes an administrative change: an account, or a system actor's name such as "manage.py".
Actor = User | str


def audit_record(*, actor: Actor, action: str, target: str, details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one audit entry (call it inside the transaction of the change it records)."""
    # The bootstrap identity is an account that is not stored: it is recorded by name only.
    account = actor if isinstance(actor, User) and actor.pk is not None else None
    name = actor.username if isinstance(actor, User) else actor
    return AuditEntry.objects.create(
        actor=account, actor_name=name, action=action, target=target, details=details or {}
    )


@transaction.atomic
def user_add(
    *, actor: Actor, username: str, email: str = "", password: str | None = None, is_lomas_admin: bool = False
) -> User:
    """Create a researcher (may query, no datasets) or a lomas admin, audited (a deleted user is revived)."""
    revived = User.objects.filter(username=username, deleted_at__isnull=False).exists()
    user = user_create(username=username, email=email, password=password, is_lomas_admin=is_lomas_admin)
    details: dict[str, Any] = {"email": email, "admin": True} if is_lomas_admin else {"email": email}
    if revived:
        details["revived"] = True
    audit_record(actor=actor, action="user.add", target=username, details=details)
    return user


@transaction.atomic
def user_delete(*, actor: Actor, user: User) -> dict[str, Any]:
    """Delete a lomas user, leaving a tombstone: their ledgers are never deleted.

    The row stays, inactive and without its lomas profile (so unknown to the API), its admin
    rights, password and tokens removed; receivers of user_deleting revoke the user's budgets
    and report them in the audit entry. Archived queries and jobs stay. Returns the audit details.
    """
    details: dict[str, Any] = {"email": user.email}
    for _receiver, extra in user_deleting.send(sender=User, user=user, actor=actor):
        details.update(extra)
    LomasProfile.objects.filter(user=user).delete()
    user_revoke_tokens(user=user)
    user.is_active = user.is_staff = user.is_superuser = False
    user.deleted_at = timezone.now()
    user.set_unusable_password()
    user.save()
    audit_record(actor=actor, action="user.delete", target=user.username, details=details)
    return details


@transaction.atomic
def user_change_may_query(*, actor: Actor, user: User, may_query: bool) -> None:
    """Set a user's query slot by hand (unblock a user whose query crashed), audited old → new."""
    old = LomasProfile.objects.select_for_update().get(user=user).may_query_now
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
    """Delete (tombstone) every researcher (lomas users who are not admins) except those named; returns their names.

    Lomas admins are kept so that dropping the users never locks the admins out.
    """
    users = list(
        User.objects.filter(lomas_profile__isnull=False, is_staff=False).exclude(username__in=keep).order_by("username")
    )
    for user in users:
        user_delete(actor=actor, user=user)
    return [user.username for user in users]


# The account fields admin pages edit (the lomas admin flag is is_staff and is_superuser together).
EDITABLE_USER_FIELDS = ("first_name", "last_name", "email", "is_active", "is_lomas_admin")


@transaction.atomic
def user_change_fields(*, actor: Actor, user: User, values: dict[str, Any]) -> dict[str, Any]:
    """Set account fields (names, email, active, lomas admin flag), audited old → new; returns what changed."""
    unknown = set(values) - set(EDITABLE_USER_FIELDS)
    if unknown:
        raise InvalidQuery(f"These user fields cannot be set here: {', '.join(sorted(unknown))}.")
    stored = User.objects.select_for_update().get(pk=user.pk)
    changed: dict[str, Any] = {}
    for field, new in values.items():
        old = stored.is_staff and stored.is_superuser if field == "is_lomas_admin" else getattr(stored, field)
        if old == new:
            continue
        changed[field] = {"old": old, "new": new}
        if field == "is_lomas_admin":
            stored.is_staff = stored.is_superuser = new
        else:
            setattr(stored, field, new)
    details = dict(changed)
    if changed.get("is_active", {}).get("new") is False:
        details["tokens_revoked"] = user_revoke_tokens(user=stored)
    if changed:
        stored.save()
        audit_record(actor=actor, action="user.update", target=stored.username, details=details)
    return changed


def user_revoke_tokens(*, user: User) -> int:
    """End every sign-in of the user: access, refresh and ID tokens, grants and device codes; how many went.

    Deactivation calls it (user_change_fields, and accounts/receivers.py for any other save).
    """
    revoked = 0
    for model in (RefreshToken, AccessToken, IDToken, Grant, DeviceGrant):
        count, _ = model.objects.filter(user=user).delete()
        revoked += count
    return revoked


def bootstrap_record_use(*, method: str, path: str) -> None:
    """Audit one request made with the bootstrap secret."""
    audit_record(actor=BOOTSTRAP_NAME, action="bootstrap.use", target=path, details={"method": method})


@transaction.atomic
def bootstrap_disable(*, actor: Actor) -> None:
    """Disable the bootstrap identity for good, audited; 410 if it is not active (disabled, or no secret set)."""
    if not bootstrap_is_active():
        raise BootstrapGone()
    name = actor.username if isinstance(actor, User) else actor
    _state, created = BootstrapState.objects.get_or_create(pk=1, defaults={"disabled_by": name})
    if not created:  # disabled meanwhile by another request
        raise BootstrapGone()
    audit_record(actor=actor, action="bootstrap.disable", target=BOOTSTRAP_NAME)
