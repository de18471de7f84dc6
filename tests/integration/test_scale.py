"""Datasets at scale on a live stack: two worker hosts, each with its own LOMAS_VAR_DIR (and so its own
columnar copies), sharing PostgreSQL, Redis and the dataset store, as the README's deployment shows.

A medium FSO-like dataset (synthesised from the FSO metadata, seeded) is converted once per host: on
host A, whose pool processes each answer one job only (`--max-tasks-per-child 1`), the second query
runs in a fresh process that finds the columnar copy and its SQLite file built and answers without
loading the dataset again; host B prepares the dataset as it starts (LOMAS_HOT_DATASETS), so even its
first query reads what is ready.
"""

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datasets.dummy import make_dummy_frame
from tests.conftest import demo_metadata
from tests.integration.conftest import ROOT, LiveStack, start_stack

ROWS = 300_000
USER, PASSWORD = "scale_researcher", "scale-researcher-pw"
QUERY = {"dataset_name": "MEDIUM", "query_str": "SELECT sex, AVG(income) AS income FROM df GROUP BY sex",
         "epsilon": 1.0, "delta": 1e-6, "mechanisms": {}, "postprocess": True}  # fmt: skip
BUILT = re.compile(r"dataset MEDIUM: built (\S+)")
FINISHED = re.compile(r"job \S+ finished: complete")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A stack without workers (the test starts its hosts), holding the medium dataset."""
    var_dir = tmp_path_factory.mktemp("lomas-scale")
    with start_stack(var_dir, celery_workers=0, extra_env={"LOMAS_STATUS_WAIT_SECONDS": "20"}) as live:
        metadata = {**demo_metadata("fso_income_synthetic"), "maxLength": ROWS, "publicLength": ROWS}
        make_dummy_frame(metadata, nb_rows=ROWS, seed=7).to_parquet(var_dir / "data" / "medium.parquet")
        (var_dir / "medium.json").write_text(json.dumps(metadata), encoding="utf-8")
        live.manage("add_dataset", "-d", "MEDIUM", "-db", "PATH_DB", "-d_path", "medium.parquet",
                    "-m_db", "PATH_DB", "-mp", str(var_dir / "medium.json"))  # fmt: skip
        live.add_researchers({USER: (PASSWORD, {"MEDIUM": (100.0, 1e-3)})})
        yield live


def _start_host(stack: LiveStack, name: str, *options: str, **env: str) -> tuple[subprocess.Popen, Path]:
    """A Celery worker as a host of its own: its own LOMAS_VAR_DIR; the data directory stays shared."""
    var_dir = Path(stack.env["LOMAS_VAR_DIR"]) / name
    var_dir.mkdir()
    log = var_dir / "worker.log"
    queues = ",".join(f"{stack.env['LOMAS_QUEUE_PREFIX']}{kind}" for kind in ("query", "dummy", "cost"))
    command = [sys.executable, "-m", "celery", "-A", "lomas", "worker", "--hostname", f"{name}@%h",
               "--queues", queues, "--concurrency", "2", "--loglevel", "INFO", "--without-gossip",
               "--without-mingle", *options]  # fmt: skip
    with log.open("a") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**stack.env, "LOMAS_VAR_DIR": str(var_dir), **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stack.processes.insert(0, process)
    _wait_for(log, " ready.")
    return process, log


def _stop(stack: LiveStack, process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)
    stack.processes.remove(process)


def _wait_for(log: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in {log}")
        time.sleep(0.2)


def _query(stack: LiveStack, token: str) -> tuple[float, dict[str, Any]]:
    """One real query over HTTP: its seconds from submission to result, and the result."""
    started = time.monotonic()
    accepted = stack.post("smartnoise_sql_query", token, QUERY)
    assert accepted.status_code == 202, accepted.text
    done = stack.wait_job(accepted.json()["uid"], token)
    assert done.status_code == 200, done.text
    return time.monotonic() - started, done.json()["result"]["result"]["df"]


def _store(host_log: Path) -> dict[str, int]:
    """The host's built files of MEDIUM and their inodes."""
    store = host_log.parent / "datasets"
    return {path.name: path.stat().st_ino for path in store.iterdir() if ".MEDIUM-" in path.name}


def test_two_hosts_keep_their_own_copies_and_a_fresh_process_does_not_load_again(stack):
    token = stack.token(USER, PASSWORD)
    host_a, log_a = _start_host(stack, "host-a", "--max-tasks-per-child", "1")

    first_seconds, first = _query(stack, token)
    files_a = _store(log_a)
    second_seconds, second = _query(stack, token)  # a fresh pool process: one job per process

    assert first["columns"] == second["columns"] == ["sex", "income"]
    assert sorted(name.rsplit(".", 1)[-1] for name in files_a) == ["arrow", "sqlite"]
    assert sorted(BUILT.findall(log_a.read_text())) == sorted(files_a)  # each built once, by the first query
    assert _store(log_a) == files_a  # the same files (inodes): not rebuilt
    assert len(FINISHED.findall(log_a.read_text())) == 2  # both jobs ran on host A
    _stop(stack, host_a)

    host_b, log_b = _start_host(stack, "host-b", LOMAS_HOT_DATASETS="MEDIUM")
    _wait_for(log_b, "dataset MEDIUM prepared")
    prepared = _store(log_b)
    third_seconds, third = _query(stack, token)

    assert third["columns"] == ["sex", "income"]
    assert sorted(BUILT.findall(log_b.read_text())) == sorted(prepared)  # built as it started, once
    assert files_a.keys() < prepared.keys()  # the same version, in its own store, with OpenDP's conformed copy
    assert [".opendp-" in name for name in prepared.keys() - files_a.keys()] == [True]
    assert _store(log_b) == prepared and _store(log_a) == files_a
    sys.stdout.write(
        f"\nMEDIUM ({ROWS} rows) SQL over HTTP: first query on host A {first_seconds:.2f} s (converts), "
        f"a fresh process {second_seconds:.2f} s, host B prepared at start {third_seconds:.2f} s\n"
    )
    _stop(stack, host_b)
