"""Scale benchmarks (`make bench`): the same releases on a dataset read from its file and from a PostgreSQL
table (SQL_DB, copied there by load_dataset_into_postgres), through lomas-client 0.5.1 against a live stack
with the production worker (2 pool processes, every benchmarked dataset hot): the first query on a fresh
pool process, the warm median, and the summed PSS (/proc/PID/smaps_rollup) of the pool before and after.
PENGUIN always; FSO_INCOME_SYNTHETIC (2 M rows) and FSO_INCOME_20M (20 M rows synthesized from its metadata
by synthesize_dataset) unless LOMAS_BENCH_QUICK=1."""

import json
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import DATABASE_URL, LiveStack, bench_results, save_bench_result, start_stack

SOURCE_DATABASE = "lomas_bench_sql_source"
CREDENTIALS_NAME = "bench"
USER, PASSWORD = "scale_researcher", "scale-researcher-pw"
POOL_PROCESSES = 2
LARGE, LARGE_ROWS = "FSO_INCOME_20M", 20_000_000
FSO = [("SmartNoise-SQL", "sql_fso_grouped_mean"), ("OpenDP", "opendp_fso_grouped_mean"),
       ("DiffPrivLib", "diffprivlib_fso_logistic")]  # fmt: skip
RELEASES = {
    "PENGUIN": [("SmartNoise-SQL", "sql_penguin_grouped_count"), ("OpenDP", "opendp_penguin_length"),
                ("DiffPrivLib", "diffprivlib_penguin_logistic")],
    "FSO_INCOME_SYNTHETIC": FSO,
    LARGE: FSO,
}  # fmt: skip
SMALLER = {LARGE: "FSO_INCOME_SYNTHETIC"}  # the 20 M-row release is compared with the same one on 2 M rows
DATASETS = ["PENGUIN"] if os.environ.get("LOMAS_BENCH_QUICK") else list(RELEASES)
SOURCES = ["file", "PostgreSQL"]
CASES = [
    (dataset, library, release, source)
    for dataset in DATASETS
    for source in SOURCES
    for library, release in RELEASES[dataset]
]
HOT = [*DATASETS, *(f"{dataset}_SQL" for dataset in DATASETS)]
# Room for every benchmarked copy at once (the 20 M rows take about 5 GB as Arrow and SQLite files, and
# 1 GB more as the Arrow copy of their PostgreSQL table).
STORE_BYTES = 32 * 2**30


@pytest.fixture(scope="module")
def scale_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A live stack with the benchmarked datasets hot, each also as a PostgreSQL table (NAME_SQL), every
    pool process started after they were added and prepared."""
    server = DATABASE_URL.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SOURCE_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {SOURCE_DATABASE}")
    credentials = json.dumps({CREDENTIALS_NAME: f"{server}/{SOURCE_DATABASE}"})
    extra_env = {
        "LOMAS_SQL_CREDENTIALS": credentials,
        "LOMAS_HOT_DATASETS": ",".join(HOT),
        "LOMAS_DATASET_CACHE_BYTES": str(STORE_BYTES),
    }
    try:
        with start_stack(
            tmp_path_factory.mktemp("lomas-scale"), extra_env=extra_env, concurrency=POOL_PROCESSES
        ) as stack:
            if LARGE in DATASETS:
                rows = str(LARGE_ROWS)
                stack.manage("synthesize_dataset", "-d", "FSO_INCOME_SYNTHETIC", "--rows", rows, "--as", LARGE)
            for dataset in DATASETS:  # the 20 M rows take about 2 minutes to copy
                table = f"bench.{dataset.lower()}"
                stack.manage("load_dataset_into_postgres", "-d", dataset, "--table", table, "-sql_cred_n", "bench")
            budgets = dict.fromkeys(HOT, (1000.0, 0.1))
            stack.add_researchers({USER: (PASSWORD, budgets)})
            fresh_pool(stack, timeout=1800)  # the first processes to prepare them build the machine's copies
            yield stack
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {SOURCE_DATABASE} WITH (FORCE)")


def fresh_pool(stack: LiveStack, timeout: float = 300) -> list[int]:
    """Replace the pool processes with new ones (the worker forks a new process for each one killed) and
    wait until each has loaded the DP libraries and prepared every hot dataset, as a worker does when it
    starts."""
    log = Path(stack.env["LOMAS_VAR_DIR"]) / "logs" / "worker0.log"
    offset = log.stat().st_size
    old = stack.pool_processes()
    for pid in old:
        os.kill(pid, 9)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [pid for pid in stack.pool_processes() if pid not in old]
        with log.open() as text:
            text.seek(offset)
            since = text.read()
        prepared = re.findall(r"dataset (\S+) (?:prepared in|could not be prepared)", since)
        ready = since.count("worker process ready")
        if len(new) == len(old) and ready >= len(new) and all(prepared.count(name) >= len(new) for name in HOT):
            return new
        time.sleep(0.5)
    raise RuntimeError("the new pool processes did not load the libraries and prepare the hot datasets in time")


def columnar_bytes(stack: LiveStack, dataset: str) -> int:
    """The size of the machine's columnar copy (Arrow file) of a dataset (not of the files built beside it)."""
    copy = re.compile(rf"\d+\.{dataset}-[0-9a-f]+\.arrow")
    [path] = [path for path in (Path(stack.env["LOMAS_VAR_DIR"]) / "datasets").iterdir() if copy.fullmatch(path.name)]
    return path.stat().st_size


def pool_pss_bytes(pids: list[int]) -> int:
    """The summed proportional set size of the processes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.parametrize(("dataset", "library", "release", "source"), CASES)
def test_scale(
    scale_stack: LiveStack, bench_repeats: int, tmp_path: Path, dataset: str, library: str, release: str, source: str
):
    """The first query on fresh pool processes comes from a client past its own first use (its first call
    is untimed), so that it times the server's cold start, not the client's."""
    name = dataset if source == "file" else f"{dataset}_SQL"
    arguments = {"user": USER, "password": PASSWORD, "dataset": name, "release": release, "repeats": bench_repeats}
    client = scale_stack.client_start("scenarios_bench:time_first_and_warm", **arguments, handshake=str(tmp_path))
    while not (tmp_path / "warm").exists():
        assert client.poll() is None, client.communicate()[1][-4000:]
        time.sleep(0.05)
    pool = fresh_pool(scale_stack)
    before = pool_pss_bytes(pool)
    (tmp_path / "fresh").touch()
    timed = scale_stack.client_result(client)
    first, warm = timed["first"], statistics.median(timed["seconds"])
    after = pool_pss_bytes(pool)

    entry = {
        "first_seconds": first,
        "warm_seconds": warm,
        "pool_pss_before": before,
        "pool_pss_after": after,
        "pool_processes": len(pool),
        "source": source,
        "columnar_bytes": columnar_bytes(scale_stack, dataset),
    }
    smaller = bench_results().get(f"Scale: {library} {SMALLER[dataset]} from {source}") if dataset in SMALLER else None
    if smaller:
        entry["smaller_warm_seconds"] = smaller["warm_seconds"]
    label = f"Scale: {library} {dataset} from {source}"
    sys.stdout.write(
        f"\n{label:55s} first {first:8.3f} s   warm {warm:8.3f} s   "
        f"pool PSS {before / 2**20:7.1f} → {after / 2**20:7.1f} MiB\n"
    )
    save_bench_result(label, entry)
    assert first > 0 and warm > 0 and after > 0
