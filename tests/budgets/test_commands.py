"""Budget commands: grant, revoke (spent budgets only with --force), set_budget_field (audited old → new)."""

import json
from io import StringIO
from uuid import uuid4

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEntry
from budgets.models import Budget, LedgerEntry
from budgets.services import budget_charge

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_dataset_to_user_grants_a_budget(alice, iris):
    assert run("add_dataset_to_user", "-u", "Alice", "-d", "IRIS", "-e", "3", "-del", "1e-5") == (
        "Alice may query IRIS with ε 3, δ 1e-05.\n"
    )
    budget = Budget.objects.get(user=alice, dataset=iris)
    assert (float(budget.initial_epsilon), float(budget.initial_delta)) == (3.0, 1e-5)
    assert AuditEntry.objects.get(action="budget.grant").target == "Alice/IRIS"


def test_add_dataset_to_user_twice_or_unknown_fails(alice):
    with pytest.raises(CommandError, match=r"^Alice already has access to PENGUIN."):
        run("add_dataset_to_user", "-u", "Alice", "-d", "PENGUIN", "-e", "1", "-del", "0")
    with pytest.raises(CommandError, match=r"^Dataset MOON does not exist"):
        run("add_dataset_to_user", "-u", "Alice", "-d", "MOON", "-e", "1", "-del", "0")


def test_revoking_an_unspent_budget(alice, penguin):
    run("del_dataset_to_user", "-u", "Alice", "-d", "PENGUIN")
    assert not Budget.objects.filter(user=alice).exists()
    assert AuditEntry.objects.get(action="budget.revoke").details["initial_epsilon"] == 10.0


def test_revoking_a_spent_budget_needs_force_and_keeps_its_ledger_in_the_audit(alice, penguin):
    job = uuid4()
    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=1e-6, job_uid=job)
    with pytest.raises(CommandError, match=r"^Alice has already spent epsilon 1.5"):
        run("del_dataset_to_user", "-u", "Alice", "-d", "PENGUIN")
    assert LedgerEntry.objects.count() == 1
    run("del_dataset_to_user", "-u", "Alice", "-d", "PENGUIN", "--force")
    assert not Budget.objects.exists()
    ledger = AuditEntry.objects.get(action="budget.revoke").details["ledger"]
    assert ledger == [
        {
            "kind": "charge",
            "epsilon": 1.5,
            "delta": 1e-6,
            "job_uid": str(job),
            "note": "",
            "created_at": ledger[0]["created_at"],
        }
    ]


def test_set_budget_field_tops_up_and_audits_old_and_new(alice, penguin):
    data = json.loads(
        run("set_budget_field", "-u", "Alice", "-d", "PENGUIN", "-f", "initial_epsilon", "-v", "12", "--json")
    )
    assert data == {"user": "Alice", "dataset": "PENGUIN", "initial_epsilon": 12.0, "initial_delta": 0.005}
    run("set_budget_field", "-u", "Alice", "-d", "PENGUIN", "--field", "initial_delta", "--value", "0.01")
    entries = AuditEntry.objects.filter(action="budget.set_initial").order_by("pk")
    assert [entry.details for entry in entries] == [
        {
            "old": {"initial_epsilon": 10.0, "initial_delta": 0.005},
            "new": {"initial_epsilon": 12.0, "initial_delta": 0.005},
        },
        {
            "old": {"initial_epsilon": 12.0, "initial_delta": 0.005},
            "new": {"initial_epsilon": 12.0, "initial_delta": 0.01},
        },
    ]


def test_set_budget_field_never_below_spent_and_only_initial_fields(alice, penguin, iris):
    budget_charge(user=alice, dataset=penguin, epsilon=2, delta=0, job_uid=uuid4())
    with pytest.raises(CommandError, match=r"^The initial budget cannot be set below the spent budget"):
        run("set_budget_field", "-u", "Alice", "-d", "PENGUIN", "-f", "initial_epsilon", "-v", "1")
    with pytest.raises(CommandError):
        run("set_budget_field", "-u", "Alice", "-d", "PENGUIN", "-f", "total_spent_epsilon", "-v", "0")
    with pytest.raises(CommandError, match=r"^Alice does not have access to IRIS."):
        run("set_budget_field", "-u", "Alice", "-d", "IRIS", "-f", "initial_epsilon", "-v", "1")
    assert not AuditEntry.objects.filter(action="budget.set_initial").exists()
