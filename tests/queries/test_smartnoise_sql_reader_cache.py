"""The smartnoise-sql adapter keeps the dataset's SQLite copy with the cached frame: costs and results unchanged.

Costs read no data at all (they parse and rewrite the query against the metadata); runs share the copy.
"""

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from datasets.connectors import CachedConnector, FrameCache
from datasets.connectors.local import PathConnector
from queries.libraries.smartnoise_sql.adapter import SmartnoiseSqlAdapter

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
GROUPED_COUNT = "SELECT species, COUNT(*) AS n FROM df GROUP BY species ORDER BY species"
EXACT_COUNTS = [["Adelie", 152], ["Chinstrap", 68], ["Gentoo", 124]]


def penguin_metadata() -> dict[str, Any]:
    return json.loads((DEMO / "metadata" / "penguin.json").read_text(encoding="utf-8"))


def penguin(cache: FrameCache | None = None, *, label: str) -> Any:
    """PENGUIN through a private cache (or uncached when cache is None)."""
    source = PathConnector("penguin.csv", metadata=penguin_metadata())
    return source if cache is None else CachedConnector(source, key=label, label=label, cache=cache)


def adapter(connector: Any, *, epsilon: float = 100.0, **body: Any) -> SmartnoiseSqlAdapter:
    request = {"query_str": GROUPED_COUNT, "epsilon": epsilon, "delta": 1e-5, "mechanisms": {}, **body}
    return SmartnoiseSqlAdapter(body=request, connector=connector, metadata=penguin_metadata())


def released(result: dict[str, Any]) -> list[list[Any]]:
    """The released rows."""
    return pd.DataFrame.from_dict(result["df"], orient="tight").values.tolist()


def near_exact(rows: list[list[Any]]) -> bool:
    """The exact counts give or take the little noise of ε = 100."""
    return [species for species, _ in rows] == [species for species, _ in EXACT_COUNTS] and all(
        abs(count - exact) <= 2 for (_, count), (_, exact) in zip(rows, EXACT_COUNTS, strict=True)
    )


def cache_events(label: str) -> dict[str, float]:
    return {
        event: REGISTRY.get_sample_value("lomas_dataset_cache_events_total", {"dataset": label, "event": event}) or 0
        for event in ("hit", "miss")
    }


def test_later_requests_reuse_the_copy_with_the_same_costs_and_results(request: pytest.FixtureRequest) -> None:
    label = f"reader-{request.node.name}"
    cache = FrameCache(max_bytes=10**9)
    uncached = adapter(penguin(label="uncached"))
    expected_cost = uncached.cost()

    first, second = adapter(penguin(cache, label=label)), adapter(penguin(cache, label=label))
    costs = [first.cost(), second.cost()]
    results = [released(first.run()), released(second.run())]

    assert costs == [expected_cost, expected_cost]
    assert all(near_exact(rows) for rows in [*results, released(uncached.run())])
    # The frame and its SQLite copy: each loaded by the first request, found by the second.
    assert cache_events(label) == {"miss": 2, "hit": 2}


def test_requests_with_other_privacy_parameters_share_the_copy_but_not_their_privacy(
    request: pytest.FixtureRequest,
) -> None:
    label = f"reader-{request.node.name}"
    cache = FrameCache(max_bytes=10**9)
    query = {"query_str": "SELECT SUM(bill_length_mm) AS s FROM df"}

    laplace = adapter(penguin(cache, label=label), epsilon=1.0, **query)
    gaussian = adapter(penguin(cache, label=label), epsilon=2.0, mechanisms={"sum_float": "gaussian"}, **query)
    costs = [laplace.cost(), gaussian.cost(), adapter(penguin(cache, label=label), epsilon=1.0, **query).cost()]

    uncached = [
        adapter(penguin(label="uncached"), epsilon=1.0, **query).cost(),
        adapter(penguin(label="uncached"), epsilon=2.0, mechanisms={"sum_float": "gaussian"}, **query).cost(),
    ]
    assert costs == [uncached[0], uncached[1], uncached[0]]
    assert costs[1].delta > costs[0].delta  # the gaussian override reached only its own request
    assert cache_events(label) == {"miss": 0, "hit": 0}  # costing reads nothing

    sums = [released(laplace.run()), released(gaussian.run())]
    assert all(1000 < total < 30000 for [[total]] in sums)  # the exact sum of bill lengths is 15021.3
    # The frame and its SQLite copy: loaded by the first run, found by the second.
    assert cache_events(label) == {"miss": 2, "hit": 2}


def test_another_thread_builds_its_own_copy(request: pytest.FixtureRequest) -> None:
    label = f"reader-{request.node.name}"
    cache = FrameCache(max_bytes=10**9)
    released_here = released(adapter(penguin(cache, label=label)).run())
    in_thread: list[Any] = []

    worker = threading.Thread(target=lambda: in_thread.append(released(adapter(penguin(cache, label=label)).run())))
    worker.start()
    worker.join()

    assert near_exact(released_here) and near_exact(in_thread[0])
    # The thread found the frame but not a copy of its own (SQLite memory databases are per connection).
    assert cache_events(label) == {"miss": 3, "hit": 1}
