"""SmartNoise-Synth benchmarks (`make bench`): MWEM and AIM fits on PENGUIN and on a
100 k-row sample of FSO_INCOME_SYNTHETIC, the wall time over HTTP (submit to result)
over the in-process time of the same fit on already-loaded data (medians)."""

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from queries.libraries.smartnoise_synth.adapter import SmartnoiseSynthAdapter

ROOT = Path(__file__).resolve().parents[2]
METADATA = ROOT / "datasets" / "demo" / "metadata"
USER, PASSWORD = "synth_bench_researcher", "synth-bench-researcher-pw"
SAMPLE_ROWS = 100_000
DATASETS = {
    "PENGUIN": ("penguin.csv", "penguin.json", ["species", "island", "sex", "flipper_length_mm"]),
    "FSO_SAMPLE_100K": ("fso_sample_100k.parquet", "fso_sample_100k.json", ["region", "education", "sex"]),
}


def add_fso_sample(stack: Any) -> None:
    """Add FSO_SAMPLE_100K to the stack: the first 100 k rows of FSO_INCOME_SYNTHETIC."""
    data_dir = Path(stack.env["LOMAS_DATA_DIR"])
    pd.read_parquet(data_dir / "fso_income_synthetic.parquet").head(SAMPLE_ROWS).to_parquet(
        data_dir / "fso_sample_100k.parquet", index=False
    )
    metadata = json.loads((METADATA / "fso_income_synthetic.json").read_text())
    metadata.update(maxLength=SAMPLE_ROWS, publicLength=SAMPLE_ROWS)
    metadata_file = data_dir / "fso_sample_100k.json"
    metadata_file.write_text(json.dumps(metadata))
    stack.manage("add_dataset", "-d", "FSO_SAMPLE_100K", "-db", "PATH_DB", "-d_path", "fso_sample_100k.parquet",
                 "-m_db", "PATH_DB", "-mp", str(metadata_file))  # fmt: skip


@pytest.fixture(scope="module")
def token(bench_stack):
    """A researcher with budgets on PENGUIN and on a 100 k-row sample of FSO_INCOME_SYNTHETIC."""
    add_fso_sample(bench_stack)
    bench_stack.add_researchers({USER: (PASSWORD, {"PENGUIN": (100, 0.01), "FSO_SAMPLE_100K": (100, 0.01)})})
    return bench_stack.token(USER, PASSWORD)


def synth_body(synth_name: str, dataset: str) -> dict:
    """The benchmarked request: 100 samples of a synthesizer fitted with ε 1 on the dataset's benchmark columns."""
    delta = None if synth_name == "mwem" else 1e-6  # mwem is pure ε-DP: a delta is refused
    return {"dataset_name": dataset, "synth_name": synth_name, "epsilon": 1.0, "delta": delta,
            "select_cols": DATASETS[dataset][2], "synth_params": {}, "nullable": False, "constraints": "",
            "return_model": False, "condition": "", "nb_samples": 100}  # fmt: skip


def time_synth_query(stack: Any, token: str, body: dict) -> float:
    """Wall seconds from submission to the complete result over HTTP."""
    started = time.perf_counter()
    accepted = stack.post("smartnoise_synth_query", token, body)
    assert accepted.status_code == 202, accepted.text
    while (status := stack.get(f"status/{accepted.json()['uid']}", token).json())["status"] == "in_progress":
        time.sleep(0.05)
    assert status["status"] == "complete", status
    return time.perf_counter() - started


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("synth_name", ["mwem", "aim"])
def test_synthesizer_fit(bench_stack, token, time_in_process, record_benchmark, bench_repeats, synth_name, dataset):
    body = synth_body(synth_name, dataset)
    seen = [time_synth_query(bench_stack, token, body) for _ in range(bench_repeats)]
    data_dir = Path(bench_stack.env["LOMAS_DATA_DIR"])
    file_name, metadata_name, _ = DATASETS[dataset]
    metadata_path = METADATA / metadata_name if (METADATA / metadata_name).exists() else data_dir / metadata_name
    metadata = json.loads(metadata_path.read_text())
    in_process = time_in_process(SmartnoiseSynthAdapter, body, data_dir / file_name, metadata)
    record_benchmark(f"SmartNoise-Synth {synth_name} on {dataset}", seen, in_process)
