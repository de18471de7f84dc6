"""Django admin shows what admins manage: users with their lock, datasets, budgets, ledger, jobs, archive."""

from uuid import uuid4

import pytest

from accounts.models import AuditEntry
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
    user_claim_query_slot(user=alice, job_uid=uuid4())
    response = admin_client_of.post(
        "/admin/accounts/user/", {"action": "release_query_lock", "_selected_action": [alice.pk]}, follow=True
    )
    assert response.status_code == 200
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True
    assert "Released the query lock of 1 user(s)." in response.content.decode()
    entry = AuditEntry.objects.get(action="user.set_may_query")
    assert (entry.actor_name, entry.target, entry.details) == ("admin", "Alice", {"old": False, "new": True})


def test_invalid_metadata_is_refused_with_a_precise_message(admin_client_of, penguin):
    response = admin_client_of.post(
        f"/admin/datasets/dataset/{penguin.pk}/change/",
        {"name": "PENGUIN", "access": "PATH_DB", "path": "penguin.csv", "metadata": '{"tableSchema": {"columns": []}}'},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "maxContributions" in response.content.decode()
    penguin.refresh_from_db()
    assert penguin.metadata["maxContributions"] == 1


def test_archive_is_read_only_filterable_and_shows_request_and_response_as_json(admin_client_of, alice, penguin):
    from queries.models import QueryArchive

    archive = QueryArchive.objects.create(
        user=alice,
        dataset=penguin,
        user_name="Alice",
        dataset_name="PENGUIN",
        dp_library="opendp",
        job_uid=uuid4(),
        client_input={"dataset_name": "PENGUIN", "fixed_delta": 1e-5},
        response={"epsilon": 0.5, "result": {"value": 42}},
    )
    page = admin_client_of.get(f"/admin/queries/queryarchive/{archive.pk}/change/").content.decode()
    assert '<pre class="lomas-json"' in page
    assert "&quot;fixed_delta&quot;: 1e-05" in page and "\n  &quot;result&quot;: {\n    &quot;value&quot;: 42" in page
    assert 'name="_save"' not in page and "/delete/" not in page
    year = archive.created_at.year
    for query in ("user_name=Alice", "dataset_name=PENGUIN", "dp_library=opendp", f"created_at__year={year}"):
        assert "1 query archive" in admin_client_of.get(f"/admin/queries/queryarchive/?{query}").content.decode()
    assert (
        "0 query archives"
        in admin_client_of.get("/admin/queries/queryarchive/?dp_library=diffprivlib").content.decode()
    )
