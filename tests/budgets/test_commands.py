"""Budget commands: grant, revoke (the ledger kept), set_budget_field (audited old → new), set_dataset_budget."""

import json
from decimal import Decimal
from io import StringIO
from uuid import uuid4

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEntry
from budgets.models import Budget, LedgerEntry
from budgets.selectors import DatasetBudgetExhausted, access_check
from budgets.services import budget_charge
from lomas.errors import UnauthorizedAccess

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


def test_revoking_keeps_the_budget_and_its_ledger_and_ends_access(alice, penguin):
    job = uuid4()
    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=1e-6, job_uid=job)
    rows = LedgerEntry.objects.count()
    text = run("del_dataset_to_user", "-u", "Alice", "-d", "PENGUIN")
    assert text == "Alice no longer has access to PENGUIN; the ledger keeps what was spent (ε 1.5, δ 1e-06).\n"
    budget = Budget.objects.get(user=alice)
    assert budget.is_revoked and budget.spent_epsilon == Decimal("1.5") and LedgerEntry.objects.count() == rows
    assert json.loads(run("get_user", "-u", "Alice", "--json"))["datasets_list"] == []
    with pytest.raises(UnauthorizedAccess, match=r"^Alice does not have access to PENGUIN"):
        access_check(user=alice, dataset_name="PENGUIN")
    assert AuditEntry.objects.get(action="budget.revoke").details["ledger"][-1]["job_uid"] == str(job)
    run("add_dataset_to_user", "-u", "Alice", "-d", "PENGUIN", "-e", "10", "-del", "0.005")
    budget.refresh_from_db()
    assert not budget.is_revoked and budget.spent_epsilon == Decimal("1.5")  # granted again, the spend carried


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


def test_set_dataset_budget_caps_the_total_never_below_what_is_spent(alice, bob, penguin):
    from budgets.services import budget_grant

    budget_grant(user=bob, dataset=penguin, epsilon=10, delta=0.001)
    budget_charge(user=alice, dataset=penguin, epsilon=2, delta=1e-4, job_uid=uuid4())
    budget_charge(user=bob, dataset=penguin, epsilon=1.5, delta=0, job_uid=uuid4())
    below = r"^The budget of dataset PENGUIN cannot be set below .* \(epsilon 3.5, delta"
    with pytest.raises(CommandError, match=below):
        run("set_dataset_budget", "-d", "PENGUIN", "-e", "3", "-del", "0.001")
    assert run("set_dataset_budget", "-d", "PENGUIN", "-e", "4", "-del", "0.001") == (
        "Dataset PENGUIN: total budget ε 4, δ 0.001; spent ε 3.5, δ 0.0001; remaining ε 0.5, δ 0.0009.\n"
    )
    data = json.loads(run("set_dataset_budget", "-d", "PENGUIN", "-e", "3.5", "-del", "1e-4", "--json"))
    assert data["remaining_epsilon"] == 0 and data["remaining_delta"] == 0
    details = [entry.details for entry in AuditEntry.objects.filter(action="dataset.set_budget").order_by("pk")]
    assert details == [
        {"old": None, "new": {"epsilon": 4.0, "delta": 0.001}},
        {"old": {"epsilon": 4.0, "delta": 0.001}, "new": {"epsilon": 3.5, "delta": 0.0001}},
    ]
    with pytest.raises(DatasetBudgetExhausted, match=r"^The dataset budget of PENGUIN is exhausted"):
        budget_charge(user=alice, dataset=penguin, epsilon=0.1, delta=0, job_uid=uuid4())
