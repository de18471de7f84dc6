"""The SmartNoise-SQL routes through the job life cycle (Celery eager, real library)."""

from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.services import user_claim_query_slot
from budgets.models import Budget, LedgerEntry
from budgets.selectors import budget_ledger_totals
from queries.models import Job, QueryArchive

pytestmark = pytest.mark.django_db

COUNT_AND_MEAN = "SELECT COUNT(*) AS n, AVG(bill_length_mm) AS mean_bill FROM df"


def _body(**overrides):
    return {"dataset_name": "PENGUIN", "query_str": COUNT_AND_MEAN, "epsilon": 1.0, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True, **overrides}  # fmt: skip


def _status(api, response):
    assert response.status_code == 202, response.content
    return api.get(f"/api/status/{response.json()['uid']}")


def test_cost_estimate_charges_nothing(alice_api, submit):
    accepted = submit(alice_api, "estimate_smartnoise_sql_cost", _body())
    assert accepted.json()["status"] == "in_progress"
    assert set(accepted.json()) == {"uid", "requested_by", "status", "result", "error", "status_code"}
    status = _status(alice_api, accepted)
    assert status.status_code == 200
    assert status.json()["status"] == "complete"
    # COUNT and AVG (a SUM and a COUNT): three noisy aggregates; deltas compose as 1 - (1 - δ)^3.
    assert status.json()["result"] == {"epsilon": 3.0, "delta": pytest.approx(1.5e-5, rel=1e-5)}
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert not QueryArchive.objects.exists()


def test_complete_job_is_handed_out_once(alice_api, submit):
    accepted = submit(alice_api, "estimate_smartnoise_sql_cost", _body())
    assert _status(alice_api, accepted).status_code == 200
    second = alice_api.get(f"/api/status/{accepted.json()['uid']}")
    assert second.status_code == 404


def test_dummy_query_runs_on_dummy_data_and_charges_nothing(alice_api, submit):
    accepted = submit(
        alice_api, "dummy_smartnoise_sql_query", _body(dummy_nb_rows=200, dummy_seed=1, epsilon=100.0, delta=1e-5)
    )
    result = _status(alice_api, accepted).json()["result"]
    assert result["requested_by"] == "Alice"
    assert result["result"]["type"] == "smartnoise_sql"
    assert result["result"]["df"]["columns"] == ["n", "mean_bill"]
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert not QueryArchive.objects.exists()


def test_real_query_charges_its_cost_exactly_and_is_archived(alice_api, alice, penguin, submit):
    accepted = submit(alice_api, "smartnoise_sql_query", _body())
    response = _status(alice_api, accepted).json()["result"]
    assert (response["epsilon"], response["delta"]) == (3.0, pytest.approx(1.5e-5, rel=1e-5))
    budget = Budget.objects.get(user=alice, dataset=penguin)
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal(3), Decimal(repr(response["delta"])))
    spent = alice_api.post("/api/get_total_spent_budget", {"dataset_name": "PENGUIN"}, format="json").json()
    assert spent == {"total_spent_epsilon": response["epsilon"], "total_spent_delta": response["delta"]}
    assert budget_ledger_totals(budget=budget) == (budget.spent_epsilon, budget.spent_delta)
    previous = alice_api.post("/api/get_previous_queries", {"dataset_name": "PENGUIN"}, format="json").json()
    [record] = previous["previous_queries"]
    assert record["dp_library"] == "smartnoise_sql"
    assert record["client_input"]["query_str"] == COUNT_AND_MEAN
    assert record["response"] == response
    assert alice.lomas_profile.may_query is True


def test_over_budget_query_fails_with_the_spec_message_and_charges_nothing(alice_api, alice, penguin, submit):
    accepted = submit(alice_api, "smartnoise_sql_query", _body(epsilon=4.0))  # costs 12 > 10
    status = _status(alice_api, accepted)
    assert status.status_code == 400
    assert status.json()["status"] == "failed"
    assert status.json()["error"] == {
        "type": "InvalidQueryException",
        "message": "Not enough budget for this query epsilon remaining 10.0, delta remaining 0.005.",
    }
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert not QueryArchive.objects.exists()
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


def test_failed_job_is_kept_for_a_second_poll(alice_api, submit):
    accepted = submit(alice_api, "smartnoise_sql_query", _body(epsilon=4.0))
    assert _status(alice_api, accepted).status_code == 400
    assert alice_api.get(f"/api/status/{accepted.json()['uid']}").status_code == 400


def test_query_while_another_runs_is_refused(alice_api, alice, submit):
    user_claim_query_slot(user=alice, job_uid=uuid4())
    status = _status(alice_api, submit(alice_api, "smartnoise_sql_query", _body()))
    assert status.status_code == 403
    assert status.json()["error"]["message"] == "User Alice is trying to query before end of previous query."
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()


@pytest.mark.parametrize(
    ("query", "status_code", "error_type"),
    [
        ("SELECT COUNT(*) FROM other_table", 400, "InvalidQueryException"),
        ("SELECT AVG(wingspan) FROM df", 400, "InvalidQueryException"),
        ("SELECT bill_length_mm FROM df", 422, "ExternalLibraryException"),
    ],
)
def test_bad_sql_fails_the_job_and_releases_the_lock(alice_api, alice, submit, query, status_code, error_type):
    status = _status(alice_api, submit(alice_api, "smartnoise_sql_query", _body(query_str=query)))
    assert status.status_code == status_code
    assert status.json()["error"]["type"] == error_type
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"epsilon": 0}, "epsilon"),
        ({"epsilon": -1}, "epsilon"),
        ({"delta": -1e-5}, "delta"),
        ({"query_str": None}, "query_str"),
        ({"mechanisms": "laplace"}, "mechanisms"),
    ],
)
def test_invalid_fields_are_400_before_any_job(alice_api, submit, override, field):
    response = submit(alice_api, "smartnoise_sql_query", _body(**override))
    assert response.status_code == 400
    assert response.json()["type"] == "InvalidQueryException"
    assert field in response.json()["message"]
    assert not Job.objects.exists()


def test_dummy_rows_above_the_cap_are_400(alice_api, submit, settings):
    settings.LOMAS_DUMMY_MAX_ROWS = 1000
    response = submit(alice_api, "dummy_smartnoise_sql_query", _body(dummy_nb_rows=1001, dummy_seed=0))
    assert response.status_code == 400
    assert "at most 1000" in response.json()["message"]
    dummy = alice_api.post("/api/get_dummy_dataset", {"dataset_name": "PENGUIN", "dummy_nb_rows": 1001,
                                                      "dummy_seed": 0}, format="json")  # fmt: skip
    assert dummy.status_code == 400


def test_job_of_another_user_is_403(alice_api, bob_api, submit):
    accepted = submit(alice_api, "estimate_smartnoise_sql_cost", _body())
    response = bob_api.get(f"/api/status/{accepted.json()['uid']}")
    assert response.status_code == 403
    assert response.json()["message"] == f"Bob does not have access to job with uid {accepted.json()['uid']}."


def test_unknown_and_malformed_job_ids(alice_api):
    assert alice_api.get("/api/status/6f1c1f8e-2d0b-4d44-9b5e-0d4c9a1f0b7e").status_code == 404
    assert alice_api.get("/api/status/not-a-uuid").status_code == 422


def test_unreachable_data_source_is_a_500_before_any_job(alice_api, penguin, submit):
    penguin.path = "missing.csv"
    penguin.save()
    response = submit(alice_api, "smartnoise_sql_query", _body())
    assert response.status_code == 500
    assert response.json() == {"type": "InternalServerException"}
    assert not Job.objects.exists()


def test_a_cost_the_library_cannot_compute_is_refused_at_submission_and_charges_nothing(alice_api, submit):
    # snsql's odometer overflows on such amounts and reports a cost of -inf (found by `make fuzz`): δ ≥ 1 is refused
    body = _body(query_str="SELECT COUNT(*) AS n FROM df", epsilon=3.9369459217983896e16, delta=4.1178726829523984e307)
    refused = submit(alice_api, "smartnoise_sql_query", body)
    assert refused.status_code == 400
    assert refused.json()["message"] == "Invalid request: delta: Ensure this value is less than 1."
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert _status(alice_api, submit(alice_api, "smartnoise_sql_query", _body())).status_code == 200
