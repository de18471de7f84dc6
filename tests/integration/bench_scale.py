"""Scale benchmarks (`make bench`): the same releases on a dataset read from its file and from a PostgreSQL
table (SQL_DB, copied there by load_dataset_into_postgres), through lomas-client 0.5.1 against a live stack
with one Celery pool process: the first query on a fresh pool process, the warm median, and the summed
PSS (/proc/PID/smaps_rollup) of the pool before and after. PENGUIN always, FSO_INCOME_SYNTHETIC (2 M rows)
unless LOMAS_BENCH_QUICK=1."""

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import BENCH_RESULTS, DATABASE_URL, LiveStack, start_stack

SOURCE_DATABASE = "lomas_bench_sql_source"
CREDENTIALS_NAME = "bench"
USER, PASSWORD = "scale_researcher", "scale-researcher-pw"
RELEASES = {
    "PENGUIN": [("SmartNoise-SQL", "sql_penguin_grouped_count"), ("OpenDP", "opendp_penguin_length"),
                ("DiffPrivLib", "diffprivlib_penguin_logistic")],
    "FSO_INCOME_SYNTHETIC": [("SmartNoise-SQL", "sql_fso_grouped_mean"), ("OpenDP", "opendp_fso_grouped_mean"),
                             ("DiffPrivLib", "diffprivlib_fso_logistic")],
}  # fmt: skip
DATASETS = ["PENGUIN"] if os.environ.get("LOMAS_BENCH_QUICK") else list(RELEASES)
CASES = [(dataset, library, release) for dataset in DATASETS for library, release in RELEASES[dataset]]


@pytest.fixture(scope="module")
def scale_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A live stack with one pool process, and each benchmarked dataset also as a PostgreSQL table (NAME_SQL)."""
    server = DATABASE_URL.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SOURCE_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {SOURCE_DATABASE}")
    credentials = json.dumps({CREDENTIALS_NAME: f"{server}/{SOURCE_DATABASE}"})
    extra_env = {"LOMAS_SQL_CREDENTIALS": credentials}
    try:
        with start_stack(tmp_path_factory.mktemp("lomas-scale"), extra_env=extra_env, concurrency=1) as stack:
            for dataset in DATASETS:
                table = f"bench.{dataset.lower()}"
                stack.manage("load_dataset_into_postgres", "-d", dataset, "--table", table, "-sql_cred_n", "bench")
            budgets = {name: (1000.0, 0.1) for dataset in DATASETS for name in (dataset, f"{dataset}_SQL")}
            stack.add_researchers({USER: (PASSWORD, budgets)})
            yield stack
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {SOURCE_DATABASE} WITH (FORCE)")


def pool_processes(stack: LiveStack) -> list[int]:
    """The pids of the Celery worker's pool processes (the children of its main process)."""
    tasks = Path(f"/proc/{stack.processes[0].pid}/task").glob("*/children")
    return sorted({int(pid) for children in tasks for pid in children.read_text().split()})


def fresh_pool(stack: LiveStack) -> list[int]:
    """Replace the pool processes with new ones (the worker forks a new process for each one killed)."""
    old = pool_processes(stack)
    for pid in old:
        os.kill(pid, 9)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [pid for pid in pool_processes(stack) if pid not in old]
        if len(new) == len(old):
            time.sleep(3)  # the new process imports the DP libraries before it takes a job
            return new
        time.sleep(0.2)
    raise RuntimeError("the pool processes were not replaced")


def pool_pss_bytes(pids: list[int]) -> int:
    """The summed proportional set size of the processes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.parametrize(("dataset", "library", "release"), CASES)
@pytest.mark.parametrize("source", ["file", "PostgreSQL"])
def test_scale(scale_stack: LiveStack, bench_repeats: int, dataset: str, library: str, release: str, source: str):
    name = dataset if source == "file" else f"{dataset}_SQL"
    pool = fresh_pool(scale_stack)
    before = pool_pss_bytes(pool)

    def seconds(repeats: int) -> list[float]:
        arguments = {"user": USER, "password": PASSWORD, "dataset": name, "release": release, "repeats": repeats}
        return scale_stack.client("scenarios_bench:time_release", **arguments)["seconds"]

    first = seconds(1)[0]
    warm = statistics.median(seconds(bench_repeats))
    after = pool_pss_bytes(pool)

    entry = {"first_seconds": first, "warm_seconds": warm, "pool_pss_before": before, "pool_pss_after": after}
    label = f"Scale: {library} {dataset} from {source}"
    sys.stdout.write(
        f"\n{label:55s} first {first:8.3f} s   warm {warm:8.3f} s   "
        f"pool PSS {before / 2**20:7.1f} → {after / 2**20:7.1f} MiB\n"
    )
    results = json.loads(BENCH_RESULTS.read_text()) if BENCH_RESULTS.exists() else {}
    results[label] = entry
    BENCH_RESULTS.write_text(json.dumps(results, indent=2))
    assert first > 0 and warm > 0 and after > 0
