"""Budgets in Django admin: initial amounts set or topped up through audited services, never below what is spent."""

from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.models import AuditEntry
from accounts.services import user_create
from budgets.models import Budget, LedgerEntry
from budgets.services import budget_charge
from queries.models import QueryArchive

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget(alice, penguin):
    budget_charge(user=alice, dataset=penguin, epsilon=4, delta=0.001, job_uid=uuid4())
    return Budget.objects.get(user=alice, dataset=penguin)


def change(client, budget, epsilon, delta):
    """Post the change form as a browser does (the read-only ledger rows included)."""
    entries = list(budget.ledger.order_by("created_at", "pk"))
    data = {
        "initial_epsilon": epsilon,
        "initial_delta": delta,
        "ledger-TOTAL_FORMS": str(len(entries)),
        "ledger-INITIAL_FORMS": str(len(entries)),
        "ledger-MIN_NUM_FORMS": "0",
        "ledger-MAX_NUM_FORMS": "0",
    }
    for index, entry in enumerate(entries):
        data |= {f"ledger-{index}-id": str(entry.pk), f"ledger-{index}-budget": str(budget.pk)}
    return client.post(f"/admin/budgets/budget/{budget.pk}/change/", data)


def test_top_up_page_shows_the_amounts_and_adds_to_the_initial_budget(admin_client, budget):
    page = admin_client.get(f"/admin/budgets/budget/{budget.pk}/top-up/").content.decode()
    assert "Top up the budget of Alice on PENGUIN" in page
    assert '<th scope="row">Remaining ε</th><td>6</td>' in page
    assert 'value="Top up"' in page

    response = admin_client.post(f"/admin/budgets/budget/{budget.pk}/top-up/", {"epsilon": "2.5", "delta": "0.001"})

    assert response.status_code == 302 and response["Location"].endswith(f"/admin/budgets/budget/{budget.pk}/change/")
    budget.refresh_from_db()
    assert (budget.initial_epsilon, budget.initial_delta) == (Decimal("12.5"), Decimal("0.006"))
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal(4), Decimal("0.001"))
    entry = AuditEntry.objects.get(action="budget.top_up")
    assert (entry.actor_name, entry.target) == ("admin", "Alice/PENGUIN")
    assert entry.details["old"] == {"initial_epsilon": 10.0, "initial_delta": 0.005}
    assert entry.details["new"] == {"initial_epsilon": 12.5, "initial_delta": 0.006}
    followed = admin_client.get(response["Location"]).content.decode()
    assert "Topped up Alice on PENGUIN: ε 10 → 12.5, δ 0.005 → 0.006." in followed


def test_top_up_refuses_negative_or_zero_amounts(admin_client, budget):
    response = admin_client.post(f"/admin/budgets/budget/{budget.pk}/top-up/", {"epsilon": "-1", "delta": "0"})
    assert response.status_code == 200
    assert "greater than or equal to 0" in response.content.decode()
    response = admin_client.post(f"/admin/budgets/budget/{budget.pk}/top-up/", {"epsilon": "0", "delta": "0"})
    assert 'class="errornote">Enter an amount of ε or δ to add.' in response.content.decode()
    budget.refresh_from_db()
    assert budget.initial_epsilon == Decimal(10) and not AuditEntry.objects.exists()


def test_change_page_shows_spent_and_remaining_read_only_and_links_the_top_up(admin_client, budget):
    page = admin_client.get(f"/admin/budgets/budget/{budget.pk}/change/").content.decode()
    assert f'href="/admin/budgets/budget/{budget.pk}/top-up/"' in page
    assert 'name="spent_epsilon' not in page and 'name="initial_epsilon" value="10"' in page


def test_setting_initial_below_spent_is_refused_with_a_clear_message(admin_client, budget):
    response = change(admin_client, budget, "3", "0.005")
    assert response.status_code == 200
    assert "The initial budget cannot be set below the spent budget (epsilon 4, delta 0.001)." in (
        response.content.decode()
    )
    budget.refresh_from_db()
    assert budget.initial_epsilon == Decimal(10) and not AuditEntry.objects.exists()


def test_setting_initial_is_audited_old_to_new(admin_client, budget):
    response = change(admin_client, budget, "20", "0.005")
    assert response.status_code == 302
    budget.refresh_from_db()
    assert budget.initial_epsilon == Decimal(20) and budget.spent_epsilon == Decimal(4)
    entry = AuditEntry.objects.get(action="budget.set_initial")
    assert entry.actor_name == "admin"
    assert (entry.details["old"]["initial_epsilon"], entry.details["new"]["initial_epsilon"]) == (10.0, 20.0)


def test_adding_a_budget_grants_access_audited(admin_client, alice, iris):
    response = admin_client.post(
        "/admin/budgets/budget/add/",
        {
            "user": alice.pk,
            "dataset": iris.pk,
            "initial_epsilon": "5",
            "initial_delta": "0.0001",
            "ledger-TOTAL_FORMS": "0",
            "ledger-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    budget = Budget.objects.get(user=alice, dataset=iris)
    assert (budget.initial_epsilon, budget.spent_epsilon) == (Decimal(5), 0)
    assert AuditEntry.objects.get(action="budget.grant").actor_name == "admin"


def test_deleting_a_budget_in_admin_revokes_it_and_keeps_its_ledger(admin_client, budget):
    rows = LedgerEntry.objects.filter(budget=budget).count()
    page = admin_client.get(f"/admin/budgets/budget/{budget.pk}/delete/").content.decode()
    assert "revoked, its budget and ledger kept" in page
    assert admin_client.post(f"/admin/budgets/budget/{budget.pk}/delete/", {"post": "yes"}).status_code == 302
    budget.refresh_from_db()
    assert budget.is_revoked and LedgerEntry.objects.filter(budget=budget).count() == rows
    assert AuditEntry.objects.get(action="budget.revoke").target == f"{budget.user}/{budget.dataset}"
    again = admin_client.post(f"/admin/budgets/budget/{budget.pk}/delete/", {"post": "yes"}, follow=True)
    assert "is already revoked" in again.content.decode()


def test_ledger_filters_by_user_dataset_and_library(admin_client, alice, bob, penguin, iris):
    carol = user_create(username="Carol")
    charged = uuid4()
    budget_charge(user=alice, dataset=penguin, epsilon=1, delta=0, job_uid=charged)
    budget_charge(user=bob, dataset=iris, epsilon=2, delta=0, job_uid=uuid4())
    QueryArchive.objects.create(
        user=alice,
        dataset=penguin,
        user_name="Alice",
        dataset_name="PENGUIN",
        dp_library="opendp",
        job_uid=charged,
        client_input={},
        response={},
    )
    by_user = admin_client.get(f"/admin/budgets/ledgerentry/?budget__user__id__exact={bob.pk}").content.decode()
    assert "IRIS" in by_user and "PENGUIN</td>" not in by_user
    by_library = admin_client.get("/admin/budgets/ledgerentry/?library=opendp").content.decode()
    assert "1 ledger entry" in by_library and "Alice" in by_library
    assert carol.username not in admin_client.get("/admin/budgets/ledgerentry/").content.decode()
