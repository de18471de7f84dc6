"""SmartNoise-SQL benchmarks (`make bench`): the wall time a researcher sees through
lomas-client 0.5.1 against the live stack, over the in-process time of the same release
on already-loaded data; medians of five, reported as ratios measured in one run."""

import json
import statistics
import time
from pathlib import Path

import pytest

from datasets.connectors.local import PathConnector
from queries.libraries.smartnoise_sql import SmartnoiseSqlAdapter

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results.json"
REPEATS = 5

SCENARIOS = [
    ("PENGUIN grouped count", "Dr.Antartica", "dr.antartica", "PENGUIN", "penguin.csv",
     "SELECT species, COUNT(*) AS n FROM df GROUP BY species"),
    ("FSO_INCOME_SYNTHETIC (2 M rows) grouped mean", "Dr.FSO", "dr.fso", "FSO_INCOME_SYNTHETIC",
     "fso_income_synthetic.parquet", "SELECT sex, AVG(income) AS mean_income FROM df GROUP BY sex"),
]  # fmt: skip


def _in_process_seconds(metadata: dict, path: Path, query: str) -> list[float]:
    frame_source = PathConnector(str(path), metadata=metadata)
    frame_source.get_pandas()  # loaded once, as a warm worker holds it
    times = []
    for _ in range(REPEATS):
        body = {"query_str": query, "epsilon": 0.5, "delta": 1e-5, "mechanisms": {}, "postprocess": True}
        started = time.perf_counter()
        adapter = SmartnoiseSqlAdapter(body=body, connector=frame_source, metadata=metadata)
        adapter.cost()
        adapter.run()
        times.append(time.perf_counter() - started)
    return times


@pytest.mark.parametrize(("name", "user", "password", "dataset", "file_name", "query"), SCENARIOS)
def test_smartnoise_sql_release(live_stack, name, user, password, dataset, file_name, query):
    seen = live_stack.client(
        "scenarios_bench:time_sql_queries", user=user, password=password, dataset=dataset, query=query,
        epsilon=0.5, delta=1e-5, repeats=REPEATS,
    )["seconds"]  # fmt: skip
    data_dir = Path(live_stack.env["LOMAS_DATA_DIR"])
    metadata = json.loads((ROOT / "datasets" / "demo" / "metadata" / _metadata_file(dataset)).read_text())
    in_process = _in_process_seconds(metadata, data_dir / file_name, query)
    server, local = statistics.median(seen), statistics.median(in_process)
    row = {"scenario": name, "client_seconds": server, "in_process_seconds": local, "ratio": server / local}
    print(f"\n{name:50s} client {server:8.3f} s   in-process {local:8.3f} s   ratio {server / local:6.2f}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = row
    RESULTS.write_text(json.dumps(results, indent=2))


def _metadata_file(dataset: str) -> str:
    return {"PENGUIN": "penguin.json", "FSO_INCOME_SYNTHETIC": "fso_income_synthetic.json"}[dataset]
