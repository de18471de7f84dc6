"""A researcher with the published lomas-client 0.5.1 against a live server
(PostgreSQL, Redis, a Celery worker): everything of a first visit, charged exactly."""

import pytest

PENGUIN_COLUMNS = [
    "species",
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
]
GROUPED_COUNT = "SELECT species, COUNT(*) AS n FROM df GROUP BY species"


def test_researcher_first_visit_with_lomas_client(live_stack):
    out = live_stack.client(
        "walkthrough",
        user="Dr.Antartica",
        password="dr.antartica",
        dataset="PENGUIN",
        query=GROUPED_COUNT,
        epsilon=1.0,
        delta=1e-5,
    )
    assert out["metadata_columns"] == PENGUIN_COLUMNS
    assert out["dummy_shape"] == [100, 7]
    assert out["initial"] == {"initial_epsilon": 10.0, "initial_delta": 0.005}
    assert out["spent_before"] == {"total_spent_epsilon": 0.0, "total_spent_delta": 0.0}
    assert out["cost"]["epsilon"] == 1.0
    assert out["cost"]["delta"] == pytest.approx(1.5e-5, rel=1e-4)
    assert out["dummy_result_columns"] == ["species", "n"]
    assert out["result"]["columns"] == ["species", "n"]
    assert out["result"]["epsilon"] == out["cost"]["epsilon"]
    assert out["result"]["delta"] == out["cost"]["delta"]
    # The spent budget is exactly the reported cost, to the last bit.
    assert out["spent_after"] == {
        "total_spent_epsilon": out["result"]["epsilon"],
        "total_spent_delta": out["result"]["delta"],
    }
    assert out["remaining_after"]["remaining_epsilon"] == 10.0 - out["result"]["epsilon"]
    assert out["previous"] == [{"dp_library": "smartnoise_sql", "query_str": GROUPED_COUNT, "epsilon": 1.0}]


def test_dummy_dataset_is_seeded(live_stack):
    first = live_stack.client("walkthrough_dummy", user="Bob", password="bob", dataset="IRIS", seed=7)
    second = live_stack.client("walkthrough_dummy", user="Bob", password="bob", dataset="IRIS", seed=7)
    other = live_stack.client("walkthrough_dummy", user="Bob", password="bob", dataset="IRIS", seed=8)
    assert first == second
    assert first != other


def test_over_budget_query_is_refused_and_charges_nothing(live_stack):
    before = live_stack.client("budgets", user="Bob", password="bob", dataset="IRIS")
    refused = live_stack.client(
        "sql_query", user="Bob", password="bob", dataset="IRIS", query="SELECT COUNT(*) AS n FROM df",
        epsilon=11.0, delta=1e-6,
    )  # fmt: skip
    assert refused["error"] == "InvalidQueryException"
    assert refused["message"].startswith("Not enough budget for this query epsilon remaining 10.0, delta remaining")
    assert live_stack.client("budgets", user="Bob", password="bob", dataset="IRIS") == before


def test_dataset_without_access_is_refused(live_stack):
    refused = live_stack.client("budgets", user="Dr.Antartica", password="dr.antartica", dataset="IRIS")
    assert refused == {"error": "UnauthorizedAccessException", "message": "Dr.Antartica does not have access to IRIS."}


def test_wrong_password_is_refused_by_the_token_endpoint(live_stack):
    refused = live_stack.client("sign_in", user="Dr.Antartica", password="wrong", dataset="PENGUIN")
    assert "invalid_grant" in refused["message"]
