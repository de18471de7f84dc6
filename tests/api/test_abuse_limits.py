"""Limits a researcher cannot push past: the submit limit, jobs in flight, request body size, dummy rows,
synthetic samples, SQL length and the work parameters of DiffPrivLib pipelines.

A job's memory limit is tested with a real worker (tests/integration/test_crash.py): it is an address-space
limit on the process, which a library's allocator may answer by aborting the whole process."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from budgets.models import LedgerEntry
from budgets.services import budget_grant
from lomas import rate_limit
from queries.models import Job
from queries.services import job_complete

pytestmark = pytest.mark.django_db

SQL_COST = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
            "mechanisms": {}}  # fmt: skip


@pytest.fixture
def submit_limit(settings: Any) -> Any:
    from django.core.cache import cache

    cache.clear()  # the test settings' cache is local memory
    settings.LOMAS_SUBMIT_LIMIT = 3
    settings.LOMAS_SUBMIT_LIMIT_WINDOW = 3600
    settings.LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER = 0  # the jobs posted here stay in progress (never run)
    return settings


def test_submissions_past_the_limit_answer_429_in_the_lomas_shape(submit_limit, alice_api, monkeypatch):
    monkeypatch.setattr(rate_limit, "clock", lambda: 7200.0 + 600)  # 3000 s left in the window
    routes = ["estimate_smartnoise_sql_cost", "dummy_smartnoise_sql_query", "smartnoise_sql_query"]
    body = {**SQL_COST, "postprocess": True, "dummy_nb_rows": 10, "dummy_seed": 1}
    assert [alice_api.post(f"/api/{route}", body, format="json").status_code for route in routes] == [202] * 3
    refused = alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json")
    assert refused.status_code == 429
    assert refused.json() == {
        "type": "UnauthorizedAccessException",
        "message": "User Alice has reached the limit of 3 submissions in 3600 s. Please, retry in 3000 s.",
    }


def test_the_limit_is_per_user_and_per_window(submit_limit, alice_api, bob_api, monkeypatch):
    now = [7200.0]
    monkeypatch.setattr(rate_limit, "clock", lambda: now[0])
    for _ in range(3):
        assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202
    assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 429
    # Bob's own submissions still count from zero (his 403 is the access check, after the limit).
    assert bob_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 403
    now[0] += 3600
    assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202


def test_refused_and_invalid_submissions_count_too(submit_limit, alice_api):
    for _ in range(3):
        assert (
            alice_api.post("/api/estimate_smartnoise_sql_cost", {"dataset_name": "MOON"}, format="json").status_code
            == 400
        )
    assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 429


def test_other_routes_are_not_limited(submit_limit, alice_api):
    for _ in range(5):
        assert (
            alice_api.post("/api/get_remaining_budget", {"dataset_name": "PENGUIN"}, format="json").status_code == 200
        )


def test_zero_switches_the_limit_off(submit_limit, alice_api):
    submit_limit.LOMAS_SUBMIT_LIMIT = 0
    for _ in range(5):
        assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202


@pytest.mark.parametrize(
    ("method", "route", "api"),
    [
        ("post", "/api/estimate_smartnoise_sql_cost", "alice_api"),
        ("post", "/api/get_dummy_dataset", "alice_api"),
        ("patch", "/api/users/Alice/dataset/budget", "admin_api"),
    ],
)
def test_a_body_over_the_size_limit_is_400(settings, request, alice, method, route, api):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = request.getfixturevalue(api)
    response = getattr(client, method)(route, {**SQL_COST, "query_str": "x" * 2000}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "type": "InvalidQueryException",
        "message": "Invalid request: the body is too large (more than 1000 bytes).",
    }


def test_dummy_rows_are_capped(settings, alice_api):
    settings.LOMAS_DUMMY_MAX_ROWS = 50
    body = {"dataset_name": "PENGUIN", "dummy_nb_rows": 51, "dummy_seed": 1}
    response = alice_api.post("/api/get_dummy_dataset", body, format="json")
    assert response.status_code == 400
    assert response.json()["message"] == "dummy_nb_rows must be at most 50 (asked for 51)."
    assert alice_api.post("/api/get_dummy_dataset", {**body, "dummy_nb_rows": 50}, format="json").status_code == 200


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_dummy_seeds_outside_numpy_range_are_400(alice_api, seed):
    body = {"dataset_name": "PENGUIN", "dummy_nb_rows": 10, "dummy_seed": seed}
    for route in ("get_dummy_dataset", "dummy_smartnoise_sql_query"):
        response = alice_api.post(f"/api/{route}", {**SQL_COST, **body, "postprocess": True}, format="json")
        assert response.status_code == 400
        assert response.json()["message"].startswith("Invalid request: dummy_seed: Ensure this value is")


def test_synthetic_samples_are_capped_at_submission(settings, alice_api):
    settings.LOMAS_SYNTH_MAX_SAMPLES = 100
    body = {"dataset_name": "PENGUIN", "synth_name": "mwem", "epsilon": 1.0, "delta": None, "select_cols": [],
            "synth_params": {}, "nullable": True, "constraints": "", "return_model": False, "condition": "",
            "nb_samples": 101}  # fmt: skip
    response = alice_api.post("/api/smartnoise_synth_query", body, format="json")
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid request: nb_samples: Ensure this value is at most 100."


def test_a_cost_no_budget_can_hold_fails_the_job_with_400(alice_api, submit):
    accepted = submit(alice_api, "estimate_smartnoise_sql_cost", {**SQL_COST, "epsilon": 1e13})
    status = alice_api.get(f"/api/status/{accepted.json()['uid']}")
    assert status.status_code == 400
    assert status.json()["error"] == {
        "type": "InvalidQueryException",
        "message": "Privacy amount 1e+13 is too large: amounts are below 1e+12.",
    }


# Posted without running them (no `submit`): the jobs stay in progress, as if queued behind busy workers.
IN_FLIGHT_ROUTES = [("estimate_smartnoise_sql_cost", SQL_COST),
                    ("dummy_smartnoise_sql_query", {**SQL_COST, "postprocess": True, "dummy_nb_rows": 10,
                                                    "dummy_seed": 1})]  # fmt: skip


@pytest.mark.parametrize(("route", "body"), IN_FLIGHT_ROUTES)
def test_estimates_and_dummies_past_the_jobs_in_flight_limit_are_400_and_queue_nothing(alice_api, route, body):
    for _ in range(2):  # the default limit
        assert alice_api.post(f"/api/{route}", body, format="json").status_code == 202
    refused = alice_api.post(f"/api/{route}", body, format="json")
    assert refused.status_code == 400
    assert refused.json() == {
        "type": "InvalidQueryException",
        "message": "User Alice already has 2 jobs in progress, the most this server runs at once for one user. "
        "Please, wait for one of them to finish before submitting another.",
    }
    assert Job.objects.filter(user__username="Alice").count() == 2


def test_every_kind_counts_but_real_queries_keep_their_one_at_a_time_rule(alice_api):
    query = {**SQL_COST, "postprocess": True}
    assert alice_api.post("/api/smartnoise_sql_query", query, format="json").status_code == 202
    assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202
    assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 400
    # a real query is not refused here: its worker answers the lomas 403 if another one runs
    assert alice_api.post("/api/smartnoise_sql_query", query, format="json").status_code == 202


def test_the_jobs_in_flight_limit_is_per_user_and_frees_with_finished_or_lost_jobs(alice_api, bob_api, bob, penguin):
    budget_grant(user=bob, dataset=penguin, epsilon=10, delta=0.005)
    first, _ = (alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json") for _ in range(2))
    assert bob_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202
    # a finished job frees a place, and so does one whose worker died (its lease is over)
    job_complete(job=Job.objects.get(uid=first.json()["uid"]), result={"epsilon": 1.0, "delta": 0.0})
    assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202
    Job.objects.filter(user__username="Alice", status=Job.Status.IN_PROGRESS).update(
        started_at=timezone.now(), lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202


def test_zero_switches_the_jobs_in_flight_limit_off(settings, alice_api):
    settings.LOMAS_MAX_JOBS_IN_FLIGHT_PER_USER = 0
    for _ in range(5):
        assert alice_api.post("/api/estimate_smartnoise_sql_cost", SQL_COST, format="json").status_code == 202


def test_sql_longer_than_the_limit_is_400_at_submission(settings, alice_api):
    settings.LOMAS_SQL_MAX_CHARS = 100
    long_sql = "SELECT COUNT(*) AS n FROM df WHERE " + " OR ".join(["bill_length_mm > 1"] * 10)
    response = alice_api.post("/api/smartnoise_sql_query", {**SQL_COST, "query_str": long_sql, "postprocess": True},
                              format="json")  # fmt: skip
    assert response.status_code == 400
    assert response.json()["message"] == (
        f"Invalid request: query_str: Ensure this query has at most 100 characters (it has {len(long_sql)})."
    )
    assert not Job.objects.exists()


FOREST = {
    "type": "_dpl_type:RandomForestClassifier",
    "name": "forest",
    "params": {"n_estimators": 10, "max_depth": 5, "epsilon": 1.0, "bounds": None,
               "classes": ["Adelie", "Chinstrap", "Gentoo"], "random_state": None,
               "accountant": "_dpl_instance:BudgetAccountant"},
}  # fmt: skip


def _forest_body(**params: Any) -> dict[str, Any]:
    forest = {**FOREST, "params": {**FOREST["params"], **params}}
    return {"dataset_name": "PENGUIN", "feature_columns": ["bill_length_mm", "flipper_length_mm"],
            "diffprivlib_json": json.dumps({"module": "diffprivlib", "version": "0.6.6", "pipeline": [forest]}),
            "target_columns": ["species"], "test_size": 0.2, "test_train_split_seed": 1,
            "imputer_strategy": "drop"}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_estimators": 101}, "n_estimators must be at most 100"),
        ({"max_depth": 16}, "max_depth must be at most 15"),
        ({"max_depth": None}, "max_depth must be at most 15"),
    ],
)
@pytest.mark.parametrize("route", ["estimate_diffprivlib_cost", "dummy_diffprivlib_query", "diffprivlib_query"])
def test_diffprivlib_work_parameters_past_their_limit_are_400_before_any_work(
    alice, alice_api, submit, route, params, message
):
    body = {**_forest_body(**params), "dummy_nb_rows": 10, "dummy_seed": 1}
    status = alice_api.get(f"/api/status/{submit(alice_api, route, body).json()['uid']}")
    assert status.status_code == 400
    assert status.json()["error"] == {
        "type": "InvalidQueryException",
        "message": f"Pipeline step 'forest': {message} on this server (see LOMAS_DIFFPRIVLIB_MAX_PARAMS).",
    }
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()


def test_diffprivlib_work_parameters_within_their_limit_run(alice_api, submit):
    status = alice_api.get(f"/api/status/{submit(alice_api, 'diffprivlib_query', _forest_body()).json()['uid']}")
    assert status.status_code == 200, status.json()
