"""The OpenDP adapter on the PENGUIN demo data, with plans built as lomas-client 0.5.1 builds them."""

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import opendp.prelude as dp
import polars as pl
import pytest
from csvw_eo.csvw_to_opendp_context import csvw_to_opendp_context
from opendp.accuracy import summarize_polars_measurement

from datasets.connectors.base import DataConnector
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector
from lomas.errors import ExternalLibraryError, InvalidQuery
from queries.libraries.base import request_scope
from queries.libraries.opendp.adapter import CostRequest, OpenDPAdapter
from queries.libraries.opendp.context import build_context, resolve

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
PENGUIN = json.loads((DEMO / "metadata" / "penguin.json").read_text(encoding="utf-8"))
Build = Callable[[Any], Any]


def client_plan(build: Build, **loss: float) -> str:
    """What lomas-client sends: a plan built on its Context over the default dummy frame, as base64."""
    dummy = DummyConnector(PENGUIN, 100, 42).get_polars()
    context = csvw_to_opendp_context(PENGUIN, dummy, split_evenly_over=1, **loss)
    return base64.b64encode(build(context.query()).serialize()).decode()


def adapter(build: Build, *, connector: DataConnector | None = None, **loss: float) -> OpenDPAdapter:
    body = {"opendp_json": client_plan(build, **loss), "approx_zcdp": True,
            "epsilon": loss.get("epsilon"), "delta": loss.get("delta"), "rho": loss.get("rho")}  # fmt: skip
    return OpenDPAdapter(
        body=body, connector=connector or PathConnector("penguin.csv", metadata=PENGUIN), metadata=PENGUIN
    )


def length(query: Any) -> Any:
    return query.select(dp.len())


def grouped_mean(query: Any) -> Any:
    return query.group_by("species").agg(pl.col("bill_length_mm").fill_null(45.0).dp.mean((30.0, 65.0)))


def filled_sum(query: Any) -> Any:
    return query.select(pl.col("flipper_length_mm").fill_null(200.0).dp.sum((150.0, 250.0)))


def biscoe_count(query: Any) -> Any:
    return query.filter(pl.col("island") == "Biscoe").select(dp.len())


def frame_of(result: dict[str, Any]) -> pl.DataFrame:
    """The result frame as lomas-client rebuilds it from the JSON text."""
    assert result["type"] == "opendp_polars"
    assert isinstance(result["value"], str)
    return pl.DataFrame(json.loads(result["value"]))


def test_pure_epsilon_costs_epsilon_and_no_delta() -> None:
    cost = adapter(length, epsilon=1.5).cost()

    assert (cost.epsilon, cost.delta) == (1.5, 0.0)


def test_epsilon_with_delta_costs_both() -> None:
    cost = adapter(filled_sum, epsilon=1.0, delta=1e-5).cost()

    assert (cost.epsilon, cost.delta) == (1.0, 1e-5)


def test_rho_with_delta_charges_the_whole_guarantee_at_exactly_delta() -> None:
    cost = adapter(grouped_mean, rho=0.5, delta=1e-6).cost()

    # The client's own test example: delta exactly 1e-6, epsilon about 5 (the classic bound gives 5.76).
    assert cost.delta == 1e-6
    assert 4.5 < cost.epsilon < 5.76
    # The Context spends up to δ/2 itself, so ε is read at the other δ/2: reading it at the whole δ
    # (5.2215) would leave the δ the Context spent uncharged.
    assert cost.epsilon == pytest.approx(5.3609, abs=1e-4)


@pytest.mark.parametrize("delta", [None, 0.0])
def test_rho_without_delta_is_refused(delta: float | None) -> None:
    with pytest.raises(InvalidQuery, match=r"^Provide a fixed delta for this query\.$"):
        adapter(length, rho=0.5, delta=delta).cost()


@pytest.mark.parametrize(
    ("loss", "valid"),
    [
        ({"epsilon": 1.0, "rho": None}, True),
        ({"epsilon": None, "rho": 0.5}, True),
        ({"epsilon": 0.0, "rho": 0.5}, True),
        ({"epsilon": 1.0, "rho": 0.5}, False),
        ({"epsilon": None, "rho": None}, False),
        ({"epsilon": 0.0, "rho": None}, False),
    ],
)
def test_exactly_one_of_epsilon_and_rho_is_set(loss: dict[str, float | None], valid: bool) -> None:
    body = {"dataset_name": "PENGUIN", "opendp_json": "AA==", "delta": 1e-6, "approx_zcdp": True, **loss}

    assert CostRequest(data=body).is_valid() is valid


def test_length_is_released_noisy_as_a_polars_frame() -> None:
    # A public length is not invariant between add/remove neighbours: the count is noised (scale 1/ε).
    [row] = frame_of(adapter(length, epsilon=1.0).run()).to_dicts()

    assert list(row) == ["len"]
    assert abs(row["len"] - 344) < 40


def test_grouped_mean_with_rho_and_delta_has_one_row_per_species() -> None:
    frame = frame_of(adapter(grouped_mean, rho=0.5, delta=1e-6).run())

    assert frame.columns == ["species", "bill_length_mm"]
    assert sorted(frame["species"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert frame["bill_length_mm"].is_between(30.0, 65.0).all()


def test_sum_with_fill_null_and_filtered_count_are_noisy_but_close() -> None:
    total = frame_of(adapter(filled_sum, epsilon=1.0, delta=1e-5).run())["flipper_length_mm"][0]
    biscoe = frame_of(adapter(biscoe_count, epsilon=1.0).run())["len"][0]

    assert 60_000 < total < 78_000  # 342 flippers of 150 to 250 mm, plus 2 nulls filled with 200
    assert 140 < biscoe < 200  # 168 penguins live on Biscoe


def test_cost_then_run_resolves_the_plan_once() -> None:
    mean = adapter(grouped_mean, rho=0.5, delta=1e-6)

    mean.cost()
    measurement = mean._measurement
    mean.run()

    assert mean._measurement is measurement


def test_dummy_data_runs_the_same_plan() -> None:
    dummy = DummyConnector(PENGUIN, 200, 7)

    cost = adapter(grouped_mean, connector=dummy, rho=0.5, delta=1e-6).cost()
    frame = frame_of(adapter(grouped_mean, connector=dummy, rho=0.5, delta=1e-6).run())

    assert cost.delta == 1e-6
    assert frame.columns == ["species", "bill_length_mm"]


def test_a_plan_on_a_column_the_metadata_lacks_is_an_external_library_error() -> None:
    def wingspan_sum(query: Any) -> Any:
        return query.select(pl.col("wingspan").fill_null(1.0).dp.sum((0.0, 2.0)))

    with pytest.raises(ExternalLibraryError, match=r"^The plan cannot be made differentially private") as caught:
        adapter(wingspan_sum, epsilon=1.0).cost()

    assert "wingspan" in caught.value.message
    assert caught.value.to_wire()["library"] == "opendp"


def test_a_release_failure_on_private_data_is_an_external_library_error(tmp_path: Path) -> None:
    class UnparsableConnector(DataConnector):
        """Private rows read lazily, one of which does not parse as the float the metadata promises."""

        def get_pandas(self) -> Any:
            raise NotImplementedError

        def get_polars(self) -> pl.LazyFrame:
            frame = PathConnector("penguin.csv", metadata=PENGUIN).get_pandas().astype({"bill_length_mm": "string"})
            frame.loc[7, "bill_length_mm"] = "secret-value-123"
            frame.to_csv(tmp_path / "private.csv", index=False)
            floats = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
            schema = dict.fromkeys(floats, pl.Float64)
            return pl.scan_csv(tmp_path / "private.csv", schema_overrides=schema)

    mean = adapter(grouped_mean, connector=UnparsableConnector(), rho=0.5, delta=1e-6)
    mean.cost()  # the plan resolves on the metadata alone

    # The service charges this failure and answers it with one fixed message (the text stays in the logs).
    with pytest.raises(ExternalLibraryError, match=r"^Error executing the OpenDP query: OpenDPException"):
        mean.run()


def test_the_real_run_reuses_the_measurement_its_twin_resolved_and_no_other_request_does() -> None:
    real = adapter(grouped_mean, rho=0.5, delta=1e-6)
    same_request_later = OpenDPAdapter(body=real.body, connector=real.connector, metadata=PENGUIN)

    with request_scope():
        twin = real.twin()
        twin.cost()
        reused = real._measurement
    with request_scope():
        resolved_again = same_request_later._measurement

    assert reused is twin._measurement
    assert resolved_again is not twin._measurement


def test_a_plan_that_releases_no_noisy_statistic_is_refused() -> None:
    def constant(query: Any) -> Any:
        return query.select(pl.lit(1).alias("one"))

    with pytest.raises(InvalidQuery, match=r"^The plan releases no noisy statistic"):
        adapter(constant, epsilon=1.0).cost()


@pytest.mark.parametrize(
    ("stem", "build", "loss"),
    [
        ("iris", lambda query: query.group_by("species").agg(dp.len()), {"epsilon": 1.0, "delta": 1e-8}),
        ("penguin", grouped_mean, {"rho": 0.5, "delta": 1e-7}),
        ("penguin", filled_sum, {"epsilon": 0.3}),
        ("penguin", lambda query: query.select(pl.col("body_mass_g").fill_null(3000.0).dp.median([3000.0, 5000.0])),
         {"epsilon": 1.0}),
    ],
    ids=["threshold", "zcdp-mean", "laplace-sum", "median"],
)  # fmt: skip
def test_the_solved_scale_is_the_one_opendp_searches(stem: str, build: Build, loss: dict[str, float]) -> None:
    metadata = json.loads((DEMO / "metadata" / f"{stem}.json").read_text(encoding="utf-8"))
    context = build_context(metadata, epsilon=loss.get("epsilon"), rho=loss.get("rho"), delta=loss.get("delta"))
    query = build(context.query())

    solved, searched = summarize_polars_measurement(resolve(query)), summarize_polars_measurement(query.resolve())

    assert solved.drop("scale").rows() == searched.drop("scale").rows()
    assert solved["scale"].to_list() == pytest.approx(searched["scale"].to_list(), rel=1e-6)


def test_honest_but_curious_is_disabled_whatever_enabled_it() -> None:
    from opendp.mod import GLOBAL_FEATURES

    dp.enable_features("honest-but-curious")

    adapter(length, epsilon=1.0).cost()

    assert "honest-but-curious" not in GLOBAL_FEATURES
    assert "contrib" in GLOBAL_FEATURES


def test_the_settings_refuse_honest_but_curious() -> None:
    env = {**os.environ, "DJANGO_DEBUG": "true", "LOMAS_OPENDP_FEATURES": "contrib,honest-but-curious"}
    done = subprocess.run(
        [sys.executable, "-c", "import lomas.settings"], cwd=DEMO.parents[1], env=env, capture_output=True, text=True
    )

    assert done.returncode != 0
    assert "ImproperlyConfigured: LOMAS_OPENDP_FEATURES must not enable honest-but-curious." in done.stderr
