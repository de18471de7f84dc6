"""OpenDP scenarios of a researcher using lomas-client 0.5.1: polars plans built on `client.get_context`."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import opendp.prelude as dp
import polars as pl
from client_session import client_error as _error
from client_session import connect as _client

QUERIES: dict[str, Callable[[Any], Any]] = {
    "length": lambda query: query.select(dp.len()),
    "grouped_mean": lambda query: query.group_by("species").agg(
        pl.col("bill_length_mm").fill_null(45.0).dp.mean((30.0, 65.0))
    ),
    "filled_sum": lambda query: query.select(pl.col("flipper_length_mm").fill_null(200.0).dp.sum((150.0, 250.0))),
    "filtered_count": lambda query: query.filter(pl.col("island") == "Biscoe").select(dp.len()),
}


# The benchmark's release on the 2 M-row FSO_INCOME_SYNTHETIC dataset.
LOSS_FSO = {"rho": 0.5, "delta": 1e-8}  # δ below 1/n for its 2,032,543 rows and for its 20 M-row copy


def fso_grouped_mean(query: Any) -> Any:
    """Mean income by sex."""
    return query.group_by("sex").agg(pl.col("income").fill_null(50_000.0).dp.mean((1_000.0, 100_000.0)))


def _frame(response: Any) -> dict[str, Any]:
    frame = response.result.value
    return {"epsilon": response.epsilon, "delta": response.delta, "type": response.result.type,
            "columns": frame.columns, "rows": frame.to_dicts()}  # fmt: skip


def opendp_walkthrough(user: str, password: str, dataset: str, query: str, loss: dict[str, float]) -> dict:
    """One plan from the client's Context: cost, dummy run, real run, budgets and history, with wall times."""
    client = _client(user, password, dataset)
    plan = QUERIES[query](client.get_context(**loss).query())
    out: dict[str, Any] = {"spent_before": client.get_total_spent_budget().model_dump(), "seconds": {}}
    started = time.perf_counter()
    out["cost"] = client.opendp.cost(plan, **loss).model_dump()
    out["seconds"]["cost"] = time.perf_counter() - started
    started = time.perf_counter()
    out["dummy"] = _frame(client.opendp.query(plan, dummy=True, **loss))
    out["seconds"]["dummy"] = time.perf_counter() - started
    started = time.perf_counter()
    out["result"] = _frame(client.opendp.query(plan, **loss))
    out["seconds"]["query"] = time.perf_counter() - started
    out["spent_after"] = client.get_total_spent_budget().model_dump()
    out["previous"] = [
        {
            "dp_library": record["dp_library"],
            "plan_is_lazyframe": isinstance(record["client_input"]["opendp_json"], pl.LazyFrame),
            "plan_is_the_one_sent": record["client_input"]["opendp_json"].serialize() == plan.serialize(),
            "epsilon": record["response"]["epsilon"],
            "delta": record["response"]["delta"],
        }
        for record in client.get_previous_queries()
    ]
    return out


class _WriteMarker:
    """A "function" whose unpickling writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, frame: Any) -> Any:
        return frame

    def __reduce__(self) -> tuple[Any, ...]:
        return exec, (f"open({self.marker!r}, 'w').write('unpickled')",)


def pickled_udf_query(user: str, password: str, dataset: str, marker: str) -> dict:
    """A real query whose plan carries a pickled Python function that writes `marker` when unpickled."""
    client = _client(user, password, dataset)
    plan = client.get_context(epsilon=1.0).query().polars_plan.map_batches(_WriteMarker(marker))
    try:
        client.opendp.query(plan, epsilon=1.0)
    except Exception as exc:
        return {**_error(exc), "marker_exists": Path(marker).exists()}
    return {"error": None, "marker_exists": Path(marker).exists()}
