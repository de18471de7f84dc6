"""Red-team regressions for OpenDP (issue 11, cases 0 and 7), each attack stated in its test's docstring."""

import base64
import json
from typing import Any

import opendp.prelude as dp
import polars as pl
import pytest
from csvw_eo.csvw_to_opendp_context import csvw_to_opendp_context
from opendp.accuracy import summarize_polars_measurement

from budgets.models import LedgerEntry
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector
from queries.libraries.opendp.adapter import OpenDPAdapter
from tests.conftest import demo_metadata

TITANIC = demo_metadata("titanic")
PENGUIN = demo_metadata("penguin")


def client_plan(metadata: dict[str, Any], build: Any, **loss: float) -> str:
    """A plan as lomas-client 0.5.1 builds it: on csvw-eo's Context over its dummy frame, as base64."""
    context = csvw_to_opendp_context(metadata, DummyConnector(metadata, 100, 42).get_polars(), split_evenly_over=1,
                                     **loss)  # fmt: skip
    return base64.b64encode(build(context.query()).serialize()).decode()


def body_for(metadata: dict[str, Any], build: Any, **loss: float) -> dict[str, Any]:
    return {"opendp_json": client_plan(metadata, build, **loss), "approx_zcdp": True, "epsilon": loss.get("epsilon"),
            "delta": loss.get("delta"), "rho": loss.get("rho")}  # fmt: skip


def released(metadata: dict[str, Any], stem: str, build: Any, **loss: float) -> tuple[float, list[tuple[Any, ...]]]:
    """The value a real query releases, and the noise scales of its measurement."""
    adapter = OpenDPAdapter(
        body=body_for(metadata, build, **loss),
        connector=PathConnector(f"{stem}.csv", metadata=metadata),
        metadata=metadata,
    )
    adapter.cost()
    [value] = json.loads(adapter.run()["value"])[0].values()
    scales = summarize_polars_measurement(adapter._measurement)["scale"].to_list()
    return value, scales


def widener_age(query: Any) -> Any:
    return query.select(pl.col("Age").filter(pl.col("Name") == "Mr. Harry Elkins Widener").dp.sum((0.0, 100.0)))


def test_one_passengers_age_is_not_released_exactly() -> None:
    """Case 0: an expression-filtered sum on TITANIC, whose length the old Context declared invariant beside
    add/remove neighbours, had sensitivity 0 and released Mr. Widener's exact age (27) for ε = 1e-6."""
    age, scales = released(TITANIC, "titanic", widener_age, epsilon=1e-6)

    assert scales == [pytest.approx(100.0 / 1e-6, rel=1e-6)]
    assert abs(age - 27.0) > 1.0


def test_the_penguin_body_mass_sum_is_noised_at_its_sensitivity() -> None:
    """Case 0: the PENGUIN body-mass sum came back as 1436999.8 (truth 1437000): noise of scale ~0."""

    def body_mass(query: Any) -> Any:
        return query.select(pl.col("body_mass_g").fill_null(2000.0).dp.sum((2000.0, 7000.0)))

    total, scales = released(PENGUIN, "penguin", body_mass, epsilon=1.0)

    assert scales == [pytest.approx(7000.0, rel=1e-6)]
    assert abs(total - (1_437_000 + 2 * 2000.0)) > 1.0  # two nulls filled with 2000


@pytest.fixture
def outcome(alice_api: Any, submit: Any) -> Any:
    """What a researcher observes of a real OpenDP query on PENGUIN: status, error, result type and columns."""

    def _outcome(build: Any) -> tuple[int, Any, Any, Any]:
        body = {"dataset_name": "PENGUIN", **body_for(PENGUIN, build, epsilon=0.001)}
        accepted = submit(alice_api, "opendp_query", body)
        assert accepted.status_code == 202, accepted.content
        job = alice_api.get(f"/api/status/{accepted.json()['uid']}")
        result = (job.json().get("result") or {}).get("result") or {}
        columns = list(json.loads(result["value"])[0]) if result else None
        return job.status_code, job.json().get("error"), result.get("type"), columns

    return _outcome


def exponent_oracle(threshold: int) -> Any:
    def build(query: Any) -> Any:
        exponent = pl.when(pl.col("body_mass_g") > threshold).then(-1).otherwise(1)
        return query.group_by("species").agg(pl.lit(2).pow(exponent).first()).select(dp.len())

    return build


def single_match_oracle(threshold: int) -> Any:
    def build(query: Any) -> Any:
        mass = pl.col("body_mass_g")
        return query.group_by("species").agg((mass.filter(mass > threshold) + mass).first()).select(dp.len())

    return build


@pytest.mark.django_db
@pytest.mark.parametrize(
    "oracle", [exponent_oracle, single_match_oracle], ids=["data-dependent-exponent", "filtered-length-mismatch"]
)
def test_a_plan_failing_on_one_private_value_answers_as_when_no_value_matches(oracle: Any, outcome: Any) -> None:
    """Case 7: `2 ** when(body_mass > t).then(-1)` (or a filtered column added to the unfiltered one) raised
    in polars only when some penguin (exactly one, for the filter) was heavier than t: answered 422 uncharged
    in one case and 200 charged in the other, a binary search on private values at ε per step."""
    one_heavier = outcome(oracle(6250))  # one penguin weighs 6300 g
    none_heavier = outcome(oracle(6400))

    assert one_heavier == none_heavier
    assert one_heavier[0] == 400
    assert one_heavier[1]["type"] == "InvalidQueryException"  # refused on the twin, before any private row
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
