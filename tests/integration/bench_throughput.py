"""Throughput benchmarks (`make bench`): cost estimates with 8 concurrent lomas-client users
(target ≥ 200/s), and a mixed load of jobs on stacks with 1, 2 and 4 Celery workers of
concurrency 1 (target: 4 workers ≥ 3 times one, where the cores allow; the core count is reported)."""

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import save_bench_result, start_stack
from tests.integration.load_generator import job_body, job_route, run_load

QUICK = bool(os.environ.get("LOMAS_BENCH_QUICK"))
COST_USERS = 8
COST_PER_USER = 10 if QUICK else 50
COST_QUERY = "SELECT species, COUNT(*) AS n FROM df GROUP BY species"
WORKER_COUNTS = (1, 2) if QUICK else (1, 2, 4)
LOAD_USERS = 4 if QUICK else 8
LOAD_PASSES = 1 if QUICK else 3
# The mixed load: real queries, a dummy query and a cost estimate, on PENGUIN and on the 2 M-row dataset.
MIX = [
    ("sql_penguin_grouped_count", "query"),
    ("opendp_penguin_two_means", "query"),
    ("diffprivlib_penguin_logistic", "query"),
    ("opendp_fso_grouped_mean", "query"),
    ("opendp_penguin_two_means", "dummy"),
    ("sql_penguin_grouped_count", "cost"),
]
RELEASE_DATASETS = {
    "sql_penguin_grouped_count": "PENGUIN",
    "opendp_penguin_two_means": "PENGUIN",
    "diffprivlib_penguin_logistic": "PENGUIN",
    "opendp_fso_grouped_mean": "FSO_INCOME_SYNTHETIC",
}
BUDGETS = {"PENGUIN": (10_000, 0.5), "FSO_INCOME_SYNTHETIC": (10_000, 0.5)}


def record(name: str, entry: dict[str, Any]) -> None:
    """Print one throughput result and add it to bench-results.json."""
    sys.stdout.write(f"\n{name:55s} " + "   ".join(f"{key} {value}" for key, value in entry.items()) + "\n")
    save_bench_result(name, entry)


def test_cost_estimate_throughput(bench_stack):
    users = [[f"cost_bench_{index}", f"cost-bench-{index}-pw"] for index in range(COST_USERS)]
    bench_stack.add_researchers({user: (password, {"PENGUIN": (10, 0.001)}) for user, password in users})
    seen = bench_stack.client(
        "scenarios_bench:cost_estimate_throughput", users=users, dataset="PENGUIN", query=COST_QUERY, epsilon=0.5,
        delta=1e-5, per_user=COST_PER_USER,
    )  # fmt: skip
    rate = seen["requests"] / seen["seconds"]
    record(f"Cost estimates, {COST_USERS} concurrent lomas-client users",
           {"requests": seen["requests"], "seconds": round(seen["seconds"], 3),
            "requests_per_second": round(rate, 1), "target_per_second": 200, "cpu_count": os.cpu_count()})  # fmt: skip
    assert seen["requests"] == COST_USERS * COST_PER_USER


@pytest.fixture(scope="module")
def mixed_jobs(bench_stack) -> list[tuple[str, dict]]:
    """The mixed load's jobs: (route, body) as lomas-client sends them, recorded once on the live stack."""
    bench_stack.add_researchers({"load_recorder": ("load-recorder-pw", BUDGETS)})
    bodies = bench_stack.client(
        "scenarios_bench:request_bodies", user="load_recorder", password="load-recorder-pw", releases=RELEASE_DATASETS
    )
    jobs = []
    for release, kind in MIX:
        route, body = bodies[release]["route"], bodies[release]["body"]
        jobs.append((job_route(route, kind), job_body(body, kind)))
    return jobs


def test_mixed_load_on_one_two_and_four_workers(bench_stack, mixed_jobs, tmp_path):
    generated = Path(bench_stack.env["LOMAS_DATA_DIR"]) / "fso_income_synthetic.parquet"
    rates: dict[int, float] = {}
    for workers in WORKER_COUNTS:
        var_dir = tmp_path / f"workers-{workers}"
        (var_dir / "data").mkdir(parents=True)
        os.link(generated, var_dir / "data" / generated.name)  # not synthesized again
        with start_stack(var_dir, celery_workers=workers, concurrency=1, web_workers=2) as stack:
            users = {f"load_{index}": f"load-{index}-pw" for index in range(LOAD_USERS)}
            stack.add_researchers({user: (password, BUDGETS) for user, password in users.items()})
            tokens = [stack.token(user, password) for user, password in users.items()]
            warm_up = run_load(stack.api, tokens, mixed_jobs, per_user=len(mixed_jobs))  # every worker loads its data
            load = run_load(stack.api, tokens, mixed_jobs, per_user=LOAD_PASSES * len(mixed_jobs))
        assert not warm_up.errors and not load.errors, (warm_up.errors + load.errors)[:5]
        rates[workers] = load.completed / load.seconds
        record(f"Mixed load, {workers} Celery worker(s) of concurrency 1",
               {"jobs": load.completed, "seconds": round(load.seconds, 3),
                "jobs_per_second": round(rates[workers], 2), "speedup": round(rates[workers] / rates[1], 2),
                "cpu_count": os.cpu_count()})  # fmt: skip
