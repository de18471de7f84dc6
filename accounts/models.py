"""Users of the server.

A Django user is a lomas user only if it has a LomasProfile: accounts without one
(an operator's superuser, say) can sign in to admin but are unknown to the API.
Lomas admins are staff users.
"""

from typing import NoReturn

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    """A person who signs in; `username` is the lomas user name (case-sensitive).

    A deleted lomas user is a tombstone: the row stays (inactive, without lomas profile) so that
    their ledgers stay, and a user created again under the same name is this row revived.
    """

    deleted_at = models.DateTimeField(null=True, blank=True)


class LomasProfile(models.Model):
    """What makes a user a lomas user: the per-user query slot."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="lomas_profile")
    # False while one of the user's real queries runs (one at a time, across datasets), or
    # while an admin keeps the user from querying.
    may_query = models.BooleanField(default=True)
    # The lease of the running query: the job holding the slot and until when. A slot held
    # past its lease (its worker died) is free again; an admin's closing has no lease.
    query_lease_job = models.UUIDField(null=True, blank=True)
    query_lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "lomas profile"

    def __str__(self) -> str:
        return f"lomas profile of {self.user.username}"

    @property
    def may_query_now(self) -> bool:
        """Whether a real query may start now: the slot is open or its lease is over."""
        return self.may_query or (self.query_lease_until is not None and self.query_lease_until <= timezone.now())


class AuditQuerySet(models.QuerySet):
    """Audit entries are written once and never changed or removed by the application."""

    def update(self, **kwargs: object) -> NoReturn:
        raise TypeError("The audit trail is append-only: entries cannot be updated.")

    def delete(self) -> NoReturn:
        raise TypeError("The audit trail is append-only: entries cannot be deleted.")


class AuditEntry(models.Model):
    """One administrative change: who made it, what it changed (old → new in `details`), when."""

    # The acting account, if it was one (kept as a name when the account is deleted).
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries")
    # The account's user name, or a system actor such as "manage.py".
    actor_name = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name}: {self.action} {self.target} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise TypeError("The audit trail is append-only: entries cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("The audit trail is append-only: entries cannot be deleted.")


class BootstrapState(models.Model):
    """The end of the bootstrap identity (spec §7): its one row, once DELETE /bootstrap disabled it for good."""

    disabled_at = models.DateTimeField(auto_now_add=True)
    disabled_by = models.CharField(max_length=150)

    class Meta:
        verbose_name = "bootstrap state"

    def __str__(self) -> str:
        return f"bootstrap identity disabled by {self.disabled_by} at {self.disabled_at:%Y-%m-%d %H:%M}"
