"""The audit trail: one entry per admin change, append-only like the ledger."""

import pytest

from accounts.models import AuditEntry
from accounts.services import audit_record, user_change_may_query

pytestmark = pytest.mark.django_db


def test_entries_cannot_be_changed_or_deleted(alice):
    entry = audit_record(actor=alice, action="test", target="x", details={"a": 1})
    with pytest.raises(TypeError, match=r"append-only"):
        entry.save()
    with pytest.raises(TypeError, match=r"append-only"):
        entry.delete()
    with pytest.raises(TypeError, match=r"append-only"):
        AuditEntry.objects.all().update(target="y")
    with pytest.raises(TypeError, match=r"append-only"):
        AuditEntry.objects.all().delete()


def test_entries_outlive_their_actor_by_name(alice, admin_user):
    user_change_may_query(actor=admin_user, user=alice, may_query=False)
    admin_user.delete()
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_name, entry.target) == (None, "admin", "Alice")
