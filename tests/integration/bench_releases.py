"""Release benchmarks (`make bench`): the lomas-bench releases through lomas-client 0.5.1 against the
live stack (PostgreSQL, Redis, Celery), each as the wall time the researcher sees over the in-process
time of the same release on already-loaded data (medians); target: seen ≤ 1.2 times in-process + 50 ms."""

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from queries.libraries import get_adapter, get_request_serializer
from tests.integration.conftest import save_bench_result

METADATA = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "metadata"
DATASETS = {
    "PENGUIN": ("penguin.csv", "penguin.json"),
    "FSO_INCOME_SYNTHETIC": ("fso_income_synthetic.parquet", "fso_income_synthetic.json"),
}
RELEASES = [
    ("OpenDP PENGUIN dp.len", "PENGUIN", "opendp_penguin_length"),
    ("OpenDP PENGUIN grouped two means", "PENGUIN", "opendp_penguin_two_means"),
    ("OpenDP FSO_INCOME_SYNTHETIC (2 M rows) grouped mean", "FSO_INCOME_SYNTHETIC", "opendp_fso_grouped_mean"),
    ("DiffPrivLib PENGUIN scaler + logistic regression", "PENGUIN", "diffprivlib_penguin_logistic"),
    ("DiffPrivLib FSO_INCOME_SYNTHETIC logistic regression", "FSO_INCOME_SYNTHETIC", "diffprivlib_fso_logistic"),
    ("SmartNoise-SQL PENGUIN grouped count", "PENGUIN", "sql_penguin_grouped_count"),
    ("SmartNoise-SQL FSO_INCOME_SYNTHETIC (2 M rows) grouped mean", "FSO_INCOME_SYNTHETIC", "sql_fso_grouped_mean"),
]
USER, PASSWORD = "bench_researcher", "bench-researcher-pw"
FIXED_TAX_RUNS = 30


@pytest.fixture(scope="module")
def researcher(bench_stack):
    bench_stack.add_researchers({USER: (PASSWORD, {"FSO_INCOME_SYNTHETIC": (1000, 0.1), "PENGUIN": (1000, 0.1)})})


def as_worker_receives(route: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The library of a query route and the body a worker runs (validated by the route's serializer)."""
    library = route.removesuffix("_query")
    serializer = get_request_serializer(library, "query")(data=body)
    serializer.is_valid(raise_exception=True)
    return library, dict(serializer.validated_data)


@pytest.mark.parametrize(("name", "dataset", "release"), RELEASES)
def test_release(bench_stack, researcher, time_in_process, record_benchmark, bench_repeats, name, dataset, release):
    seen = bench_stack.client(
        "scenarios_bench:time_release", user=USER, password=PASSWORD, dataset=dataset, release=release,
        repeats=bench_repeats,
    )  # fmt: skip
    library, body = as_worker_receives(seen["route"], seen["body"])
    file_name, metadata_name = DATASETS[dataset]
    metadata = json.loads((METADATA / metadata_name).read_text())
    data_file = Path(bench_stack.env["LOMAS_DATA_DIR"]) / file_name
    record_benchmark(name, seen["seconds"], time_in_process(get_adapter(library), body, data_file, metadata))


def test_fixed_tax_over_raw_http(bench_stack, researcher, time_in_process, bench_repeats):
    """PENGUIN dp.len as a script without lomas-client sends it (one token, then submit and status on one
    HTTP connection), against the same release in-process and through lomas-client; target: raw HTTP ≤
    in-process + 25 ms."""
    seen = bench_stack.client(
        "scenarios_bench:time_release", user=USER, password=PASSWORD, dataset="PENGUIN",
        release="opendp_penguin_length", repeats=bench_repeats,
    )  # fmt: skip
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {bench_stack.token(USER, PASSWORD)}"
    http = []
    for _ in range(FIXED_TAX_RUNS):
        started = time.perf_counter()
        uid = session.post(f"{bench_stack.api}/{seen['route']}", json=seen["body"], timeout=60).json()["uid"]
        while (answer := session.get(f"{bench_stack.api}/status/{uid}", timeout=60).json())["status"] == "in_progress":
            pass
        http.append(time.perf_counter() - started)
        assert answer["status"] == "complete", answer
    library, body = as_worker_receives(seen["route"], seen["body"])
    metadata = json.loads((METADATA / "penguin.json").read_text())
    local = time_in_process(
        get_adapter(library), body, Path(bench_stack.env["LOMAS_DATA_DIR"]) / "penguin.csv", metadata
    )
    entry = {
        "http_seconds": statistics.median(http),
        "client_seconds": statistics.median(seen["seconds"]),
        "in_process_seconds": statistics.median(local),
        "runs": len(http),
    }
    sys.stdout.write(
        f"\nFixed tax, PENGUIN dp.len: raw HTTP {entry['http_seconds']:.3f} s, lomas-client "
        f"{entry['client_seconds']:.3f} s, in-process {entry['in_process_seconds']:.3f} s\n"
    )
    save_bench_result("Fixed tax: OpenDP PENGUIN dp.len over raw HTTP", entry)
