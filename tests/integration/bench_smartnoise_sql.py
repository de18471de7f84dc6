"""SmartNoise-SQL benchmarks (`make bench`): the wall time a researcher sees through
lomas-client 0.5.1 against the live stack, over the in-process time of the same release
on already-loaded data; medians of five, reported as ratios measured in one run."""

import json
from pathlib import Path

import pytest

from queries.libraries.smartnoise_sql import SmartnoiseSqlAdapter

METADATA = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "metadata"
SCENARIOS = [
    ("SmartNoise-SQL PENGUIN grouped count", "PENGUIN", "penguin.csv", "penguin.json",
     "SELECT species, COUNT(*) AS n FROM df GROUP BY species"),
    ("SmartNoise-SQL FSO_INCOME_SYNTHETIC (2 M rows) grouped mean", "FSO_INCOME_SYNTHETIC",
     "fso_income_synthetic.parquet", "fso_income_synthetic.json",
     "SELECT sex, AVG(income) AS mean_income FROM df GROUP BY sex"),
]  # fmt: skip
USER, PASSWORD = "sql_bench_researcher", "sql-bench-researcher-pw"


@pytest.fixture(scope="module")
def researcher(live_stack):
    live_stack.add_researchers({USER: (PASSWORD, {"FSO_INCOME_SYNTHETIC": (100, 0.01), "PENGUIN": (100, 0.01)})})


@pytest.mark.parametrize(("name", "dataset", "file_name", "metadata_name", "query"), SCENARIOS)
def test_smartnoise_sql_release(
    live_stack, researcher, time_in_process, record_benchmark, name, dataset, file_name, metadata_name, query
):
    seen = live_stack.client(
        "scenarios_bench:time_sql_queries", user=USER, password=PASSWORD, dataset=dataset, query=query,
        epsilon=0.5, delta=1e-5, repeats=5,
    )["seconds"]  # fmt: skip
    body = {"query_str": query, "epsilon": 0.5, "delta": 1e-5, "mechanisms": {}, "postprocess": True}
    metadata = json.loads((METADATA / metadata_name).read_text())
    data_file = Path(live_stack.env["LOMAS_DATA_DIR"]) / file_name
    record_benchmark(name, seen, time_in_process(SmartnoiseSqlAdapter, body, data_file, metadata))
