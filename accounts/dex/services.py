"""Writes on Dex: push lomas users with bcrypt-hashed passwords, delete them, set passwords, bulk-sync.

A lomas user becomes the Dex entry {email: user email, username: user name, user_id: a UUID derived
from the name, hash: bcrypt of the password}. Dex finds entries by email; we find a user's entry by
username, else by email. Django keeps only a PBKDF2 hash of a lomas password, so the plaintext to
hash for Dex is always given by the caller (the command line, a collection's `client_secret`, or the
admin form). Every change is audited once Dex has made it.
"""

import uuid
from dataclasses import asdict, dataclass

import bcrypt
from django.conf import settings

from accounts.dex.client import DexClient, DexError, DexPassword
from accounts.dex.selectors import dex_entry_for
from accounts.models import User
from accounts.selectors import user_list
from accounts.services import Actor, audit_record
from lomas.errors import InvalidQuery

# Namespace of the Dex user ids (the `sub` claim Dex issues), so a user keeps the same id across pushes.
_USER_ID_NAMESPACE = uuid.UUID("0b6b8d1e-5d43-5b4c-9f0e-6c6f6d61732d")

# bcrypt only reads the first 72 bytes of a password: a longer one is refused rather than truncated.
_BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True)
class DexChange:
    """One step of a push or sync: `action` is create, update, delete, keep or skip."""

    action: str
    name: str
    email: str
    reason: str = ""

    def to_wire(self) -> dict[str, object]:
        """The change in the shape the bulk commands print (`changes_text`)."""
        fields = [self.email] + ([self.reason] if self.reason else [])
        return {**asdict(self), "collection": "dex", "fields": fields}


def dex_hash_password(password: str) -> bytes:
    """The bcrypt hash Dex stores, at the configured cost; InvalidQuery for an empty or over-long password."""
    raw = password.encode()
    if not raw:
        raise InvalidQuery("A Dex password must not be empty.")
    if len(raw) > _BCRYPT_MAX_BYTES:
        raise InvalidQuery(f"A Dex password must be at most {_BCRYPT_MAX_BYTES} bytes (bcrypt).")
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=settings.LOMAS_DEX_BCRYPT_ROUNDS))


def dex_user_id(username: str) -> str:
    """The stable Dex user id of a lomas user name."""
    return str(uuid.uuid5(_USER_ID_NAMESPACE, username))


def _require_email(user: User) -> None:
    if not user.email:
        raise InvalidQuery(f"User {user.username} has no email: Dex signs users in by email.")


def _write(client: DexClient, *, user: User, password: str, entry: DexPassword | None) -> str:
    """Make Dex hold `user` with `password`, replacing `entry` if given; returns create or update.

    Dex cannot change an entry's email: a user whose email changed gets a new entry, and the old
    one is deleted only once the new one exists.
    """
    bcrypt_hash = dex_hash_password(password)
    moved = entry is not None and entry.email.lower() != user.email.lower()
    if (
        entry is not None
        and not moved
        and client.update_password(email=entry.email, bcrypt_hash=bcrypt_hash, username=user.username)
    ):
        return "update"
    created = client.create_password(
        email=user.email, bcrypt_hash=bcrypt_hash, username=user.username, user_id=dex_user_id(user.username)
    )
    if not created:
        raise InvalidQuery(f"Dex already has an entry for {user.email}.")
    if entry is not None and moved:
        client.delete_password(email=entry.email)
    return "create" if entry is None else "update"


def _audit(*, actor: Actor, change: DexChange) -> None:
    audit_record(actor=actor, action=f"dex.{change.action}", target=change.name, details={"email": change.email})


def dex_user_push(*, actor: Actor, user: User, password: str, overwrite: bool = False) -> DexChange:
    """Create the user's Dex entry; with `overwrite` an existing one is updated, otherwise it is an error."""
    _require_email(user)
    with DexClient.from_settings() as client:
        entry = dex_entry_for(client.list_passwords(), username=user.username, email=user.email)
        if entry is not None and not overwrite:
            raise InvalidQuery(f"User {user.username} already exists in Dex ({entry.email}).")
        change = DexChange(_write(client, user=user, password=password, entry=entry), user.username, user.email)
    _audit(actor=actor, change=change)
    return change


def _entry_by_username(client: DexClient, username: str) -> DexPassword:
    entry = dex_entry_for(client.list_passwords(), username=username)
    if entry is None:
        raise InvalidQuery(f"User {username} is not in Dex.")
    return entry


def dex_user_delete(*, actor: Actor, username: str) -> DexChange:
    """Delete the Dex entry with this username (the lomas user, if any, stays)."""
    with DexClient.from_settings() as client:
        entry = _entry_by_username(client, username)
        client.delete_password(email=entry.email)
    change = DexChange("delete", username, entry.email)
    _audit(actor=actor, change=change)
    return change


def dex_user_set_password(*, actor: Actor, username: str, password: str) -> DexChange:
    """Replace the password of the Dex entry with this username."""
    bcrypt_hash = dex_hash_password(password)
    with DexClient.from_settings() as client:
        entry = _entry_by_username(client, username)
        if not client.update_password(email=entry.email, bcrypt_hash=bcrypt_hash, username=username):
            raise DexError(f"The Dex entry of {username} disappeared during the update.")
    change = DexChange("update", username, entry.email, reason="password")
    audit_record(actor=actor, action="dex.set_password", target=username, details={"email": entry.email})
    return change


def _plan(
    users: list[User],
    entries: list[DexPassword],
    *,
    passwords: dict[str, str],
    clean: bool,
    overwrite: bool,
    skip_missing: bool,
) -> tuple[list[DexChange], dict[str, DexPassword | None]]:
    """What a sync does, before any call that changes Dex; also each pushed user's current entry."""
    changes: list[DexChange] = []
    targets: dict[str, DexPassword | None] = {}
    matched: set[str] = set()
    unpushable: list[str] = []
    for user in users:
        entry = dex_entry_for(entries, username=user.username, email=user.email)
        if entry is not None:
            matched.add(entry.email)
        reason = "no email" if not user.email else "" if user.username in passwords else "no client_secret"
        if reason:
            unpushable.append(f"{user.username} ({reason})")
            changes.append(DexChange("skip", user.username, user.email, reason=reason))
        elif entry is not None and not overwrite:
            changes.append(DexChange("keep", user.username, user.email))
        else:
            changes.append(DexChange("create" if entry is None else "update", user.username, user.email))
            targets[user.username] = entry
    if unpushable and not skip_missing:
        raise InvalidQuery(f"Cannot push to Dex: {', '.join(unpushable)}. Use --skip-missing to leave them out.")
    if clean:
        changes += [DexChange("delete", entry.username, entry.email) for entry in entries if entry.email not in matched]
    return changes, targets


def dex_sync(
    *,
    actor: Actor,
    passwords: dict[str, str],
    clean: bool = False,
    overwrite: bool = False,
    skip_missing: bool = False,
    dry_run: bool = False,
) -> list[DexChange]:
    """Push every lomas user to Dex with the password named for them in `passwords`.

    Existing entries are kept unless `overwrite`; `clean` deletes the entries of no lomas user.
    A lomas user without a password or an email is an error (nothing changes) unless `skip_missing`.
    """
    users = {user.username: user for user in user_list()}
    with DexClient.from_settings() as client:
        changes, targets = _plan(
            list(users.values()),
            client.list_passwords(),
            passwords=passwords,
            clean=clean,
            overwrite=overwrite,
            skip_missing=skip_missing,
        )
        if dry_run:
            return changes
        # Deletions first: a pushed user's new email may be held by an entry being cleaned.
        for change in sorted(changes, key=lambda change: change.action != "delete"):
            if change.action == "delete":
                client.delete_password(email=change.email)
            elif change.action in {"create", "update"}:
                user = users[change.name]
                _write(client, user=user, password=passwords[change.name], entry=targets[change.name])
            else:
                continue
            _audit(actor=actor, change=change)
    return changes
