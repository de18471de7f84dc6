"""Version benchmark (`make bench` with LOMAS_BENCH_BASELINE=<commit>): every release of the other
benchmarks, the same requests, against this tree's live stack and against a live stack of the baseline
commit (checked out in a git worktree, run with the same virtualenv), in turn round after round so that
both meet the same machine. Reports this tree's median over the baseline's, as seen by the researcher:
lomas-client 0.5.1 for the releases of bench_releases.py, HTTP for those of bench_smartnoise_synth.py.
Target: no release more than 10 % slower than the baseline. Skipped without LOMAS_BENCH_BASELINE."""

import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.bench_releases import RELEASES
from tests.integration.bench_smartnoise_synth import add_fso_sample, synth_body, time_synth_query
from tests.integration.conftest import ROOT, LiveStack, save_bench_result, start_stack

BASELINE = os.environ.get("LOMAS_BENCH_BASELINE", "")
USER, PASSWORD = "version_researcher", "version-researcher-pw"
BUDGETS = dict.fromkeys(("PENGUIN", "FSO_INCOME_SYNTHETIC", "FSO_SAMPLE_100K"), (10_000.0, 0.001))
SYNTH_CASES = [("mwem", "PENGUIN"), ("mwem", "FSO_SAMPLE_100K"), ("aim", "PENGUIN"), ("aim", "FSO_SAMPLE_100K")]
ROUNDS = int(os.environ.get("LOMAS_BENCH_ROUNDS", "3"))  # each round times both versions, this tree first

pytestmark = pytest.mark.skipif(not BASELINE, reason="LOMAS_BENCH_BASELINE names no baseline commit")


@pytest.fixture(scope="module")
def baseline_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The baseline commit checked out beside this tree (with this tree's generated Dex stubs)."""
    tree = tmp_path_factory.mktemp("baseline") / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), BASELINE], cwd=ROOT, check=True)
    stubs = ROOT / "accounts" / "dex" / "generated"
    if stubs.exists() and (tree / "accounts" / "dex").exists():
        shutil.copytree(stubs, tree / "accounts" / "dex" / "generated", dirs_exist_ok=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def _ready(stack: LiveStack) -> LiveStack:
    add_fso_sample(stack)
    stack.add_researchers({USER: (PASSWORD, BUDGETS)})
    return stack


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory, baseline_tree: Path) -> Iterator[dict[str, LiveStack]]:
    """This tree's stack and the baseline's, each with one Celery worker and the deployed defaults."""
    with (
        start_stack(tmp_path_factory.mktemp("lomas-now")) as now,
        start_stack(tmp_path_factory.mktemp("lomas-baseline"), root=baseline_tree) as baseline,
    ):
        yield {"now": _ready(now), "baseline": _ready(baseline)}


def _in_turn(time_on: Callable[[LiveStack], list[float]], stacks: dict[str, LiveStack]) -> dict[str, list[float]]:
    seen: dict[str, list[float]] = {"now": [], "baseline": []}
    for _ in range(ROUNDS):
        for version in ("now", "baseline"):
            seen[version].extend(time_on(stacks[version]))
    return seen


def _record(name: str, seen: dict[str, list[float]]) -> None:
    now, baseline = statistics.median(seen["now"]), statistics.median(seen["baseline"])
    sys.stdout.write(f"\n{name:55s} now {now:8.3f} s   baseline {baseline:8.3f} s   ratio {now / baseline:5.2f}\n")
    entry = {
        "now_seconds": now,
        "baseline_seconds": baseline,
        "version_ratio": now / baseline,
        "runs": len(seen["now"]),
    }
    save_bench_result(f"Versus {BASELINE[:10]}: {name}", entry)


@pytest.mark.parametrize(("name", "dataset", "release"), RELEASES)
def test_release_against_the_baseline(stacks: dict[str, LiveStack], name: str, dataset: str, release: str) -> None:
    def time_on(stack: LiveStack) -> list[float]:
        arguments = {"user": USER, "password": PASSWORD, "dataset": dataset, "release": release, "repeats": 2}
        return stack.client("scenarios_bench:time_release", **arguments)["seconds"]

    _record(name, _in_turn(time_on, stacks))


@pytest.mark.parametrize(("synth_name", "dataset"), SYNTH_CASES)
def test_synthesizer_against_the_baseline(stacks: dict[str, LiveStack], synth_name: str, dataset: str) -> None:
    body = synth_body(synth_name, dataset)

    def time_on(stack: LiveStack) -> list[float]:
        return [time_synth_query(stack, stack.token(USER, PASSWORD), body)]

    _record(f"SmartNoise-Synth {synth_name} on {dataset}", _in_turn(time_on, stacks))
