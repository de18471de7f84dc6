"""Dataset-wide caps: a total (ε, δ) over all researchers together, checked before any private work and at charge."""

from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.services import user_create
from budgets.models import Budget, LedgerEntry
from budgets.selectors import DatasetBudgetExhausted, budget_check_affordable
from budgets.services import budget_charge, budget_grant, budget_revoke, dataset_budget_set
from queries.models import Job

pytestmark = pytest.mark.django_db

EXHAUSTED = "The dataset budget of PENGUIN is exhausted: its researchers together have epsilon 1.0, delta 0.001 left."


@pytest.fixture
def capped(alice, penguin):
    """PENGUIN capped at ε 4 in total; a second researcher and a revoked one have spent 3 of it."""
    carol, dave = user_create(username="Carol"), user_create(username="Dave")
    for user in (carol, dave):
        budget_grant(user=user, dataset=penguin, epsilon=10, delta=0.005)
    budget_charge(user=carol, dataset=penguin, epsilon=2, delta=0, job_uid=uuid4())
    budget_charge(user=dave, dataset=penguin, epsilon=1, delta=0, job_uid=uuid4())
    budget_revoke(actor="test", user=dave, dataset=penguin)  # what Dave spent still counts
    dataset_budget_set(actor="test", dataset=penguin, epsilon=4, delta=0.001)
    return penguin


def test_a_charge_within_the_users_budget_but_over_the_datasets_is_refused_and_charges_nothing(alice, capped):
    with pytest.raises(DatasetBudgetExhausted, match=f"^{EXHAUSTED}$") as refused:
        budget_charge(user=alice, dataset=capped, epsilon=1.5, delta=0, job_uid=uuid4())
    assert refused.value.status == 400 and refused.value.wire_type == "InvalidQueryException"
    assert Budget.objects.get(user=alice).spent_epsilon == 0
    assert not LedgerEntry.objects.filter(budget__user=alice, kind=LedgerEntry.Kind.CHARGE).exists()
    with pytest.raises(DatasetBudgetExhausted, match=f"^{EXHAUSTED}$"):
        budget_check_affordable(user=alice, dataset=capped, epsilon=1.5, delta=0)
    budget_charge(user=alice, dataset=capped, epsilon=1, delta=0, job_uid=uuid4())  # exactly what is left passes
    assert Budget.objects.get(user=alice).spent_epsilon == Decimal(1)


def test_a_query_over_the_dataset_cap_fails_before_any_private_work(alice_api, capped, submit):
    body = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.5, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True}  # fmt: skip
    accepted = submit(alice_api, "smartnoise_sql_query", body)
    status = alice_api.get(f"/api/status/{accepted.json()['uid']}")
    assert status.status_code == 400
    assert status.json()["error"]["type"] == "InvalidQueryException"
    assert status.json()["error"]["message"].startswith("The dataset budget of PENGUIN is exhausted")
    assert Job.objects.get(uid=accepted.json()["uid"]).private_run_cost is None  # refused before the private rows
    assert not LedgerEntry.objects.filter(budget__user__username="Alice", kind=LedgerEntry.Kind.CHARGE).exists()
    remaining = alice_api.post("/api/get_remaining_budget", {"dataset_name": "PENGUIN"}, format="json").json()
    assert remaining == {"remaining_epsilon": 10.0, "remaining_delta": 0.005}


def test_admin_pages_show_the_cap_with_spent_and_remaining(admin_client, capped):
    page = admin_client.get(f"/admin/datasets/dataset/{capped.pk}/change/").content.decode()
    assert "cap ε 4, δ 0.001; spent ε 3, δ 0; remaining ε 1, δ 0.001" in page
    cap = capped.total_budget
    form = {"cap_epsilon": "2.5", "cap_delta": "0.001"}
    refused = admin_client.post(f"/admin/budgets/datasetbudget/{cap.pk}/change/", form)
    assert refused.status_code == 200 and "cannot be set below what its researchers spent in total (epsilon 3" in (
        refused.content.decode()
    )
    saved = admin_client.post(f"/admin/budgets/datasetbudget/{cap.pk}/change/", {**form, "cap_epsilon": "6"})
    assert saved.status_code == 302
    overview = admin_client.get("/admin/overview/").content.decode()
    assert 'id="dataset-budgets-table"' in overview
    assert "<td>PENGUIN</td><td>6.0</td><td>3.0</td><td>3.0</td>" in overview
