"""The OpenDP routes through the job life cycle (Celery eager, real library)."""

import base64
import io
import json
from decimal import Decimal
from typing import Any
from uuid import uuid4

import opendp.prelude as dp
import pandas as pd
import polars as pl
import pytest
from csvw_eo.csvw_to_opendp_context import csvw_to_opendp_context

from accounts.services import user_claim_query_slot
from budgets.models import Budget, LedgerEntry
from datasets.connectors.dummy import DummyConnector
from queries.models import Job, QueryArchive

pytestmark = pytest.mark.django_db


def _plan(penguin: Any, build: Any, **loss: float) -> str:
    """A plan as lomas-client builds it: on its Context over the default dummy frame, as base64."""
    dummy = DummyConnector(penguin.metadata, 100, 42).get_polars()
    context = csvw_to_opendp_context(penguin.metadata, dummy, split_evenly_over=1, **loss)
    return base64.b64encode(build(context.query()).serialize()).decode()


def _grouped_mean(query: Any) -> Any:
    return query.group_by("species").agg(pl.col("bill_length_mm").fill_null(45.0).dp.mean((30.0, 65.0)))


def _biscoe_count(query: Any) -> Any:
    return query.filter(pl.col("island") == "Biscoe").select(dp.len())


@pytest.fixture
def mean_body(penguin: Any) -> dict[str, Any]:
    return {"dataset_name": "PENGUIN", "opendp_json": _plan(penguin, _grouped_mean, rho=0.5, delta=1e-6),
            "epsilon": None, "delta": 1e-6, "rho": 0.5, "approx_zcdp": True}  # fmt: skip


@pytest.fixture
def count_body(penguin: Any) -> dict[str, Any]:
    return {"dataset_name": "PENGUIN", "opendp_json": _plan(penguin, _biscoe_count, epsilon=1.0),
            "epsilon": 1.0, "delta": None, "rho": None, "approx_zcdp": True}  # fmt: skip


@pytest.fixture
def submit(django_capture_on_commit_callbacks: Any) -> Any:
    """POST a DP route, run its job (eagerly) as the worker would, and poll it once."""

    def _submit(api: Any, route: str, body: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            accepted = api.post(f"/api/{route}", body, format="json")
        assert accepted.status_code == 202, accepted.content
        assert accepted.json()["status"] == "in_progress"
        return api.get(f"/api/status/{accepted.json()['uid']}")

    return _submit


def test_cost_estimate_is_the_zcdp_budget_at_delta_and_charges_nothing(alice_api, submit, mean_body):
    status = submit(alice_api, "estimate_opendp_cost", mean_body)

    assert status.status_code == 200
    assert status.json()["status"] == "complete"
    assert status.json()["result"] == {"epsilon": pytest.approx(5.3609, abs=1e-4), "delta": 1e-6}
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert not QueryArchive.objects.exists()


def test_dummy_query_returns_a_polars_frame_and_charges_nothing(alice_api, submit, mean_body):
    status = submit(alice_api, "dummy_opendp_query", {**mean_body, "dummy_nb_rows": 200, "dummy_seed": 1})

    response = status.json()["result"]
    assert (response["epsilon"], response["delta"], response["requested_by"]) == (pytest.approx(5.3609, abs=1e-4),
                                                                                 1e-6, "Alice")  # fmt: skip
    assert response["result"]["type"] == "opendp_polars"
    # lomas-client rebuilds the frame from the JSON text.
    frame = pl.DataFrame(json.loads(response["result"]["value"]))
    assert frame.columns == ["species", "bill_length_mm"]
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert not QueryArchive.objects.exists()


def test_real_query_charges_its_cost_exactly_and_is_archived_with_its_plan(
    alice_api, alice, penguin, submit, count_body
):
    status = submit(alice_api, "opendp_query", count_body)

    response = status.json()["result"]
    assert (response["epsilon"], response["delta"]) == (1.0, 0.0)
    assert 140 < pl.DataFrame(json.loads(response["result"]["value"]))["len"][0] < 200  # 168 on Biscoe
    budget = Budget.objects.get(user=alice, dataset=penguin)
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal(1), Decimal(0))
    spent = alice_api.post("/api/get_total_spent_budget", {"dataset_name": "PENGUIN"}, format="json").json()
    assert spent == {"total_spent_epsilon": 1.0, "total_spent_delta": 0.0}
    previous = alice_api.post("/api/get_previous_queries", {"dataset_name": "PENGUIN"}, format="json").json()
    [record] = previous["previous_queries"]
    assert record["dp_library"] == "opendp"
    assert record["client_input"]["opendp_json"] == count_body["opendp_json"]
    assert record["response"] == response
    # lomas-client decodes the archived plan with polars: the client's own plan, not the server's rewrite.
    sent = base64.b64decode(count_body["opendp_json"])
    assert (
        pl.LazyFrame.deserialize(io.BytesIO(base64.b64decode(record["client_input"]["opendp_json"]))).serialize()
        == sent
    )
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


def test_a_query_costing_more_than_the_budget_is_refused_and_charges_nothing(
    alice_api, alice, penguin, submit, count_body
):
    body = {**count_body, "opendp_json": _plan(penguin, _biscoe_count, epsilon=11.0), "epsilon": 11.0}

    status = submit(alice_api, "opendp_query", body)

    assert status.status_code == 400
    assert status.json()["error"]["message"].startswith("Not enough budget for this query epsilon remaining 10.0")
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


def test_rho_without_delta_fails_the_job_with_the_spec_message(alice_api, submit, mean_body):
    status = submit(alice_api, "estimate_opendp_cost", {**mean_body, "delta": None})

    assert status.status_code == 400
    assert status.json()["error"] == {
        "type": "InvalidQueryException",
        "message": "Provide a fixed delta for this query.",
    }


def test_a_plan_opendp_cannot_make_private_is_an_external_library_error(alice_api, penguin, submit, count_body):
    def raw_column(query: Any) -> Any:
        return query.select(pl.col("bill_length_mm"))

    status = submit(alice_api, "opendp_query", {**count_body, "opendp_json": _plan(penguin, raw_column, epsilon=1.0)})

    assert status.status_code == 422
    assert status.json()["error"]["type"] == "ExternalLibraryException"
    assert status.json()["error"]["library"] == "opendp"
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()


def test_query_while_another_runs_is_refused(alice_api, alice, submit, count_body):
    user_claim_query_slot(user=alice, job_uid=uuid4())

    status = submit(alice_api, "opendp_query", count_body)

    assert status.status_code == 403
    assert status.json()["error"]["message"] == "User Alice is trying to query before end of previous query."


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"epsilon": 1.0, "rho": 0.5}, "Either epsilon or rho"),
        ({"epsilon": None, "rho": None}, "Either epsilon or rho"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"delta": -1e-6}, "delta"),
        ({"opendp_json": None}, "opendp_json"),
        ({"approx_zcdp": "sometimes"}, "approx_zcdp"),
    ],
)
def test_invalid_fields_are_400_before_any_job(alice_api, count_body, override, field):
    response = alice_api.post("/api/opendp_query", {**count_body, **override}, format="json")

    assert response.status_code == 400
    assert response.json()["type"] == "InvalidQueryException"
    assert field in response.json()["message"]
    assert not Job.objects.exists()


def test_the_time_limit_on_the_private_rows_is_the_time_limit_error(alice_api, alice, penguin, submit, settings,
                                                                    _data_dir):  # fmt: skip
    # given: a million private rows, which a grouped quantile reads in about a second on a quiet machine,
    # and a limit of a quarter of that, which the twin's 100 rows (some 30 ms) stay well within
    frame = pd.read_csv(_data_dir / "penguin.csv")
    (_data_dir / "penguin.csv").unlink()
    pd.concat([frame] * 3000, ignore_index=True).to_csv(_data_dir / "penguin.csv", index=False)
    settings.LOMAS_JOB_TIME_LIMIT = 0.25

    def median_mass(query: Any) -> Any:
        candidates = [2000.0 + 5.0 * step for step in range(1000)]
        return query.group_by("species").agg(pl.col("body_mass_g").fill_null(4000.0).dp.quantile(0.5, candidates))

    body = {"dataset_name": "PENGUIN", "opendp_json": _plan(penguin, median_mass, epsilon=1.0), "epsilon": 1.0,
            "delta": None, "rho": None, "approx_zcdp": True}  # fmt: skip

    # when
    status = submit(alice_api, "opendp_query", body)

    # then: the time limit, not a library error, and charged: the private rows were read
    assert status.status_code == 400
    assert status.json()["error"] == {
        "type": "InvalidQueryException",
        "message": "The job exceeded the time limit of 0.25 s and was stopped; its cost was charged, as it had read "
        "the private data. Ask for less work (fewer epochs, samples or columns).",
    }
    assert Budget.objects.get(user=alice, dataset=penguin).spent_epsilon == Decimal(1)
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True
