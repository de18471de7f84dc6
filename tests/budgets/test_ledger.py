"""The indelible ledger: it alone explains every budget, and no admin path removes a row or lowers a spend."""

from decimal import Decimal
from importlib import import_module
from uuid import uuid4

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models import ProtectedError

from accounts.services import user_create, user_delete
from budgets.models import Budget, LedgerEntry
from budgets.selectors import (
    budget_ledger_grants,
    budget_ledger_totals,
    dataset_budget_to_wire,
    top_consumers,
)
from budgets.services import budget_charge, budget_revoke, budget_set_initial, budget_top_up
from lomas.errors import NO_ACCESS, UNKNOWN_USER, UnauthorizedAccess

pytestmark = pytest.mark.django_db


def _explained(budget: Budget) -> bool:
    budget.refresh_from_db()
    return budget_ledger_grants(budget=budget) == (budget.initial_epsilon, budget.initial_delta) and (
        budget_ledger_totals(budget=budget) == (budget.spent_epsilon, budget.spent_delta)
    )


def test_grants_top_ups_and_initial_changes_are_ledger_rows(alice, penguin):
    budget = Budget.objects.get(user=alice, dataset=penguin)
    budget_charge(user=alice, dataset=penguin, epsilon=2, delta=0, job_uid=uuid4())
    budget_top_up(actor="test", user=alice, dataset=penguin, epsilon=5, delta=0.001)
    budget_set_initial(user=alice, dataset=penguin, epsilon=4)
    grants = LedgerEntry.objects.filter(budget=budget, kind=LedgerEntry.Kind.GRANT).order_by("pk")
    assert [(entry.epsilon, entry.delta) for entry in grants] == [
        (Decimal(10), Decimal("0.005")),
        (Decimal(5), Decimal("0.001")),
        (Decimal(-11), Decimal(0)),
    ]
    assert _explained(budget) and budget.initial_epsilon == 4 and budget.spent_epsilon == 2


def test_the_database_refuses_a_cascade_onto_the_ledger(alice, penguin):
    for doomed in (alice, penguin, Budget.objects.get(user=alice)):
        with pytest.raises(ProtectedError), transaction.atomic():
            doomed.delete()
    assert LedgerEntry.objects.filter(budget__user=alice).exists()


def test_a_deleted_user_keeps_their_ledger_cannot_query_and_still_counts_for_the_dataset(alice, penguin, alice_api):
    budget_charge(user=alice, dataset=penguin, epsilon=1, delta=0, job_uid=uuid4())
    rows = LedgerEntry.objects.count()
    user_delete(actor="test", user=alice)
    answer = alice_api.post("/api/get_remaining_budget", {"dataset_name": "PENGUIN"}, format="json")
    assert answer.status_code == 403 and answer.json()["message"] == UNKNOWN_USER.format(user="Alice")
    assert LedgerEntry.objects.count() == rows
    assert dataset_budget_to_wire(dataset=penguin)["total_spent_epsilon"] == 1.0
    assert top_consumers() == {"PENGUIN": [("Alice", Decimal(1))]}


def test_a_revoked_budget_cannot_query_and_still_counts_for_the_dataset(alice, penguin, alice_api, submit):
    budget_charge(user=alice, dataset=penguin, epsilon=1, delta=0, job_uid=uuid4())
    budget_revoke(actor="test", user=alice, dataset=penguin)
    refusal = {"type": "UnauthorizedAccessException", "message": NO_ACCESS.format(user="Alice", dataset="PENGUIN")}
    for route in ("get_remaining_budget", "get_initial_budget", "get_total_spent_budget"):
        answer = alice_api.post(f"/api/{route}", {"dataset_name": "PENGUIN"}, format="json")
        assert (answer.status_code, answer.json()) == (403, refusal)
    body = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True}  # fmt: skip
    submitted = submit(alice_api, "smartnoise_sql_query", body)
    assert (submitted.status_code, submitted.json()) == (403, refusal)
    with pytest.raises(UnauthorizedAccess, match=r"^Alice does not have access to PENGUIN"):
        budget_charge(user=alice, dataset=penguin, epsilon=1, delta=0, job_uid=uuid4())
    assert dataset_budget_to_wire(dataset=penguin)["total_spent_epsilon"] == 1.0


def test_deleted_then_recreated_through_the_admin_api_carries_the_spend(alice, penguin, admin_api):
    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=1e-6, job_uid=uuid4())
    assert admin_api.delete("/api/users/Alice").status_code == 200
    added = admin_api.post("/api/users", {"id": {"name": "Alice", "email": "a@example.org"}}, format="json")
    assert added.status_code == 200
    users = {user["id"]["name"]: user for user in admin_api.get("/api/users").json()}
    assert users["Alice"]["datasets_list"] == []
    assert admin_api.patch("/api/users/Alice/dataset", {"dataset_name": "PENGUIN"}, format="json").status_code == 200
    users = {user["id"]["name"]: user for user in admin_api.get("/api/users").json()}
    assert users["Alice"]["datasets_list"] == [
        {
            "dataset_name": "PENGUIN",
            "initial_epsilon": 1.5,  # access of 0/0 granted again: never below what was spent
            "initial_delta": 1e-6,
            "total_spent_epsilon": 1.5,
            "total_spent_delta": 1e-6,
        }
    ]


def test_a_revoked_budget_granted_again_keeps_the_larger_spend(alice, penguin):
    from budgets.services import budget_grant

    budget_charge(user=alice, dataset=penguin, epsilon=1, delta=1e-4, job_uid=uuid4())
    budget_revoke(actor="test", user=alice, dataset=penguin)
    budget = budget_grant(user=alice, dataset=penguin, epsilon=8, delta=0.005, spent_epsilon=3, spent_delta=0)
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal(3), Decimal("0.0001"))
    assert _explained(budget) and budget.initial_epsilon == 8


def test_user_created_again_is_the_same_row_active_again(alice):
    user_delete(actor="test", user=alice)
    again = user_create(username="Alice", email="new@example.org", password="pw-123456")
    assert again.pk == alice.pk and again.is_active and again.deleted_at is None and again.check_password("pw-123456")


def test_the_data_migration_writes_a_grant_for_every_existing_budget(penguin):
    legacy = Budget.objects.create(
        user=user_create(username="Legacy"), dataset=penguin, initial_epsilon=3, initial_delta=0
    )  # as budgets were before grants joined the ledger
    migration = import_module("budgets.migrations.0003_indelible_ledger_and_dataset_caps")
    migration.write_grants(apps, None)
    assert budget_ledger_grants(budget=legacy) == (Decimal(3), Decimal(0))
