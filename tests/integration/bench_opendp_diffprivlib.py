"""OpenDP and DiffPrivLib benchmarks (`make bench`): the wall time a researcher sees through
lomas-client 0.5.1 over the in-process time of the same release on already-loaded data,
medians of five, reported as ratios measured in one run."""

import json
from pathlib import Path

import pytest

from queries.libraries.diffprivlib import DiffPrivLibAdapter
from queries.libraries.opendp import OpenDPAdapter

METADATA = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "metadata"
USER, PASSWORD = "bench_researcher", "bench-researcher-pw"


@pytest.fixture(scope="module")
def researcher(live_stack):
    live_stack.add_researchers({USER: (PASSWORD, {"FSO_INCOME_SYNTHETIC": (100, 0.01), "PENGUIN": (100, 0.01)})})


def test_opendp_grouped_mean_on_two_million_rows(live_stack, researcher, time_in_process, record_benchmark):
    seen = live_stack.client(
        "scenarios_bench:time_opendp_fso_grouped_mean", user=USER, password=PASSWORD,
        dataset="FSO_INCOME_SYNTHETIC", repeats=5,
    )  # fmt: skip
    body = {"opendp_json": seen["opendp_json"], "epsilon": None, "rho": 0.5, "delta": 1e-6, "approx_zcdp": True}
    metadata = json.loads((METADATA / "fso_income_synthetic.json").read_text())
    data_file = Path(live_stack.env["LOMAS_DATA_DIR"]) / "fso_income_synthetic.parquet"
    in_process = time_in_process(OpenDPAdapter, body, data_file, metadata)
    record_benchmark("OpenDP FSO_INCOME_SYNTHETIC (2 M rows) grouped mean", seen["seconds"], in_process)


def test_diffprivlib_logistic_regression_on_penguin(live_stack, researcher, time_in_process, record_benchmark):
    seen = live_stack.client(
        "scenarios_bench:time_diffprivlib_penguin_logistic", user=USER, password=PASSWORD, dataset="PENGUIN",
        repeats=5,
    )  # fmt: skip
    body = {"diffprivlib_json": seen["diffprivlib_json"], "feature_columns": seen["features"],
            "target_columns": seen["targets"], "test_size": 0.2, "test_train_split_seed": 1,
            "imputer_strategy": "drop"}  # fmt: skip
    metadata = json.loads((METADATA / "penguin.json").read_text())
    data_file = Path(live_stack.env["LOMAS_DATA_DIR"]) / "penguin.csv"
    in_process = time_in_process(DiffPrivLibAdapter, body, data_file, metadata)
    record_benchmark("DiffPrivLib PENGUIN scaler + logistic regression", seen["seconds"], in_process)
