"""Django admin shows what admins manage: users with their lock, datasets, budgets, ledger, jobs, archive."""

from uuid import uuid4

import pytest

from accounts.services import user_claim_query_slot
from budgets.services import budget_charge

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_of(admin_user, client):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    "page",
    [
        "accounts/user",
        "datasets/dataset",
        "budgets/budget",
        "budgets/ledgerentry",
        "queries/job",
        "queries/queryarchive",
    ],
)
def test_changelists_render(admin_client_of, alice, page):
    assert admin_client_of.get(f"/admin/{page}/").status_code == 200


def test_budget_page_shows_remaining_and_ledger(admin_client_of, alice, penguin):
    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=0.001, job_uid=uuid4())
    budget = alice.budgets.get()
    page = admin_client_of.get(f"/admin/budgets/budget/{budget.pk}/change/").content.decode()
    assert "8.5" in page  # remaining epsilon
    assert "Query charge" in page


def test_release_query_lock_action(admin_client_of, alice):
    user_claim_query_slot(user=alice)
    response = admin_client_of.post(
        "/admin/accounts/user/", {"action": "release_query_lock", "_selected_action": [alice.pk]}, follow=True
    )
    assert response.status_code == 200
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


def test_invalid_metadata_is_refused_with_a_precise_message(admin_client_of, penguin):
    response = admin_client_of.post(
        f"/admin/datasets/dataset/{penguin.pk}/change/",
        {"name": "PENGUIN", "access": "PATH_DB", "path": "penguin.csv", "metadata": '{"tableSchema": {"columns": []}}'},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "maxContributions" in response.content.decode()
    penguin.refresh_from_db()
    assert penguin.metadata["maxContributions"] == 1
