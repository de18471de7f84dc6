"""The smartnoise-sql adapter runs on the dataset version's SQLite file, built once per machine beside the
columnar copy and opened read-only by every process and thread: costs and results unchanged, the total
functions installed on every connection.

Costs read no data at all (they parse and rewrite the query against the metadata); runs share the file.
"""

import json
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from datasets.connectors import CachedConnector, FrameCache
from datasets.connectors.base import DataConnector
from datasets.connectors.local import PathConnector
from queries.libraries.smartnoise_sql.adapter import SmartnoiseSqlAdapter
from queries.libraries.smartnoise_sql.sqlite import sql_file_reader
from tests.privacy.test_smartnoise_sql_totality import EXTREME_METADATA, EXTREME_ROWS, ON_EXTREME_ROWS, evaluated

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
GROUPED_COUNT = "SELECT species, COUNT(*) AS n FROM df GROUP BY species ORDER BY species"
EXACT_COUNTS = [["Adelie", 152], ["Chinstrap", 68], ["Gentoo", 124]]


def penguin_metadata() -> dict[str, Any]:
    return json.loads((DEMO / "metadata" / "penguin.json").read_text(encoding="utf-8"))


def penguin(cache: FrameCache | None = None, *, label: str) -> Any:
    """PENGUIN through a private per-process cache and the machine's store (or uncached when cache is None)."""
    source = PathConnector("penguin.csv", metadata=penguin_metadata())
    return source if cache is None else CachedConnector(source, key=label.replace("-", "_"), label=label, cache=cache)


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


def test_another_thread_and_another_process_cache_share_the_file(request: pytest.FixtureRequest) -> None:
    label = f"reader-{request.node.name}"
    released_here = released(adapter(penguin(FrameCache(), label=label)).run())
    in_thread: list[Any] = []

    # A thread of this process, and a connector whose per-process cache is empty (as in another process).
    worker = threading.Thread(
        target=lambda: in_thread.append(released(adapter(penguin(FrameCache(), label=label)).run()))
    )
    worker.start()
    worker.join()

    assert near_exact(released_here) and near_exact(in_thread[0])
    # The columnar copy and its SQLite file: built by the first run only.
    assert cache_events(label) == {"miss": 2, "hit": 2}


def test_threads_racing_for_a_new_version_build_its_files_once(request: pytest.FixtureRequest) -> None:
    label = f"reader-{request.node.name}"
    results: list[Any] = []
    runs = [
        threading.Thread(target=lambda: results.append(released(adapter(penguin(FrameCache(), label=label)).run())))
        for _ in range(4)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()

    assert len(results) == 4 and all(near_exact(rows) for rows in results)
    assert cache_events(label)["miss"] == 2


def test_the_file_is_opened_read_only(request: pytest.FixtureRequest) -> None:
    label = f"reader-{request.node.name}"
    connector = penguin(FrameCache(), label=label)
    first = adapter(connector)
    first.run()

    with first._sql_copy().db_engine.connect() as connection, pytest.raises(Exception, match="readonly"):
        connection.exec_driver_sql("DELETE FROM df")


def test_a_query_grouped_by_a_categorical_column_reads_a_covering_index_without_sorting(
    request: pytest.FixtureRequest,
) -> None:
    from snsql.sql.reader.pandas import PandasReader

    label = f"reader-{request.node.name}"
    connector = penguin(FrameCache(), label=label)
    released = adapter(connector)
    sql_copy = released._sql_copy()
    own = PandasReader(conn=connector.get_pandas(), metadata=released._snsql_metadata)
    grouped = "SELECT species, COUNT(*), SUM(body_mass_g) FROM df WHERE island <> 'x' GROUP BY species"

    with sql_copy.db_engine.connect() as connection:
        plan = " ".join(row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {grouped}"))
    assert "COVERING INDEX" in plan
    assert "TEMP B-TREE" not in plan
    assert sql_copy.execute(grouped) == own.execute(grouped)


def test_warm_up_parses_rewrites_and_runs_a_query_once_per_process() -> None:
    from queries.libraries.smartnoise_sql.adapter import _warm_up_once

    SmartnoiseSqlAdapter.warm_up()
    SmartnoiseSqlAdapter.warm_up()

    assert _warm_up_once.cache_info().currsize == 1


class ExtremeRows(DataConnector):
    """The totality test's extreme rows, as a source."""

    source = "extreme rows"

    def get_pandas(self, columns: Any = None) -> pd.DataFrame:
        return EXTREME_ROWS


@pytest.mark.parametrize("family", ON_EXTREME_ROWS)
def test_every_admitted_construct_runs_on_extreme_values_in_the_file(
    family: str, request: pytest.FixtureRequest
) -> None:
    query = f"SELECT COUNT(*) AS n FROM df WHERE {evaluated(ON_EXTREME_ROWS[family])} >= 0"
    request_body = {"query_str": query, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {}, "postprocess": False}
    connector = CachedConnector(ExtremeRows(), key="extreme", cache=FrameCache())
    sql_adapter = SmartnoiseSqlAdapter(body=request_body, connector=connector, metadata=EXTREME_METADATA)

    result = sql_adapter.run()

    assert result["df"]["columns"] == ["res_0"]
    assert sql_adapter._sql_copy().db_engine.url.database.endswith(".sqlite")


EVERY_TYPE = pd.DataFrame(
    {
        "i": pd.array([1, None, -(2**63)], dtype="Int64"),
        "f": [0.5, float("nan"), float("inf")],
        "b": pd.array([True, None, False], dtype="boolean"),
        "s": pd.array(["a", None, "it's"], dtype="string"),
        "d": pd.to_datetime(["2020-01-02 03:04:05", None, "1999-12-31 23:59:59.123456"], format="ISO8601"),
    }
)


class EveryType(DataConnector):
    source = "every type"

    def get_pandas(self, columns: Any = None) -> pd.DataFrame:
        return EVERY_TYPE


def test_the_file_holds_what_snsqls_own_copy_holds() -> None:
    from snsql.sql.reader.pandas import PandasReader

    metadata = {"": {"": {"df": {"row_privacy": True, **{name: {"type": "string"} for name in EVERY_TYPE}}}}}
    shared = sql_file_reader(CachedConnector(EveryType(), key="types", cache=FrameCache()), metadata)
    own = PandasReader(conn=EVERY_TYPE, metadata=metadata)

    query = "SELECT i, f, b, s, d, typeof(i), typeof(f), typeof(b), typeof(s), typeof(d) FROM df"
    assert shared.execute(query) == own.execute(query)
    assert shared.execute(query)[1][4] == "2020-01-02 03:04:05.000000"
