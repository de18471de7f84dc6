"""The OpenDP Context a plan is resolved on, built by the server from the dataset's metadata alone.

What the Context declares decides every noise scale, so each part is stated here with
the neighbouring datasets it describes:

- privacy unit: one person adds or removes up to `maxContributions` rows (symmetric
  distance). No length is declared invariant: a public length is only invariant between
  datasets of the same length, which no add/remove neighbour has (declaring both made
  OpenDP calibrate sums and quantiles to a sensitivity of 0). The metadata's lengths are
  upper bounds (`max_length`), which float sums need;
- domain: the metadata's column types; a column may hold nulls unless the metadata says
  it has none; floats never hold NaN. The rows are made to fit it row by row (NaN
  becomes null, a row with a null where none may be is dropped), which add/remove
  neighbours preserve;
- margins: per column or column group, the group length bound, the number of groups
  (its listed keys, or `maxNumPartitions`), and invariant keys only where the metadata
  says the keys are public and invariant (`invariantPublicKeys`).
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from datasets.connectors import metadata_digest
from datasets.connectors.base import DataConnector
from datasets.metadata import column_dtypes

if TYPE_CHECKING:
    import polars as pl
    from opendp.context import Context
    from opendp.extras.polars import LazyFrameQuery, Margin
    from opendp.mod import Domain, Measure, Measurement, Metric

# Closed-form scale solutions checked against OpenDP's own privacy map before one is accepted.
_SCALE_ATTEMPTS = 4
# The largest threshold OpenDP takes: it leaves the threshold out of the search for the scale.
_NO_THRESHOLD = 2**32 - 1
# The version of what conform() writes into a conformed file: raised when it changes, so that no older file is read.
CONFORMED_FORMAT = 1

# OpenDP atom types of the polars dtypes the connectors produce (datasets.connectors.reading).
_ATOM_TYPES = {"Int64": "i64", "Float64": "f64", "Boolean": "bool", "String": "String"}


def privacy_unit(metadata: dict[str, Any]) -> tuple[Metric, int]:
    """Add/remove neighbours: one person adds or removes at most `maxContributions` rows."""
    import opendp.prelude as dp

    return dp.unit_of(contributions=int(metadata["maxContributions"]))


def polars_schema(metadata: dict[str, Any]) -> pl.Schema:
    """The polars schema of the dataset's frames: the connectors' pandas dtypes, converted by polars."""
    return _polars_schema(tuple(column_dtypes(metadata).items()))


@cache
def _polars_schema(dtypes: tuple[tuple[str, str], ...]) -> pl.Schema:
    import polars as pl

    empty = pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in dtypes})
    return pl.from_pandas(empty).collect_schema()


def domain(metadata: dict[str, Any], schema: pl.Schema) -> Domain:
    """The frame domain: column types from the metadata, nulls only where it allows them, no NaN."""
    import opendp.prelude as dp
    import polars as pl

    series = []
    for column, (name, dtype) in zip(_columns(metadata), schema.items(), strict=True):
        atom = _ATOM_TYPES.get(str(dtype))
        if atom is None:  # dates and durations: the domain OpenDP infers for the dtype
            inferred = dp.domain_of(pl.LazyFrame(schema={name: dtype}), infer=True)
            element = inferred.get_series_domain(name).element_domain
        elif atom == "f64":
            element = dp.atom_domain(T=atom, nan=False)
        else:
            element = dp.atom_domain(T=atom)
        series.append(dp.series_domain(name, dp.option_domain(element) if _nullable(column) else element))
    return dp.lazyframe_domain(series)


def margins(metadata: dict[str, Any]) -> list[Margin]:
    """What the metadata says of the whole table and of its groups (see the module docstring)."""
    from opendp.extras.polars import Margin

    found = [Margin(by=[], max_length=_max_length(metadata))]
    for column in _columns(metadata):
        margin = _group_margin([column["name"]], column, boolean=column.get("datatype") == "boolean",
                               nullable=_nullable(column))  # fmt: skip
        if margin is not None:
            found.append(margin)
    for group in metadata.get("additionalInformation") or []:
        names = group.get("columnsInGroup")
        if group.get("@type") == "ColumnGroup" and names:
            margin = _group_margin(list(names), group, boolean=False, nullable=False)
            if margin is not None:
                found.append(margin)
    return found


def conform(frame: pl.LazyFrame, metadata: dict[str, Any]) -> pl.LazyFrame:
    """The rows made to fit the domain, row by row: NaN becomes null, rows with a forbidden null are dropped."""
    import polars as pl

    schema = polars_schema(metadata)
    floats = [name for name, dtype in schema.items() if dtype == pl.Float64]
    required = [column["name"] for column in _columns(metadata) if not _nullable(column)]
    frame = frame.select(list(schema)).with_columns(pl.col(floats).fill_nan(None))
    return frame.drop_nulls(required) if required else frame


def conformed_rows(connector: DataConnector, metadata: dict[str, Any]) -> pl.LazyFrame:
    """The connector's rows made to fit the domain (conform).

    From a source with a machine copy, a lazy scan of the version's conformed Arrow file, written once
    per machine and memory-mapped by every process: a plan reads only its own columns, and no process
    keeps a copy of the rows. Otherwise the rows are conformed as the plan runs.
    """
    import polars as pl

    name = f".opendp-{CONFORMED_FORMAT}-{metadata_digest(metadata)[:16]}.arrow"
    path = connector.shared_file(name, lambda target: conform(connector.get_polars(), metadata).sink_ipc(target))
    return conform(connector.get_polars(), metadata) if path is None else pl.scan_ipc(path, memory_map=True)


def loss(*, epsilon: float | None, rho: float | None, delta: float | None) -> tuple[Measure, Any]:
    """The privacy loss the Context may spend: pure ε, (ε, δ), rho or (rho, δ)."""
    import opendp.prelude as dp

    if epsilon is not None:
        return dp.loss_of(epsilon=epsilon, delta=delta)
    return dp.loss_of(rho=rho, delta=delta)


def build_context(
    metadata: dict[str, Any], *, epsilon: float | None, rho: float | None, delta: float | None
) -> Context:
    """A one-query Context over an empty frame of the dataset's schema: plans resolve on it without data.

    What `Context.compositor(split_evenly_over=1)` builds, without its search for the one
    query's share: a composition of one query whose share is the whole loss, checked.
    """
    import opendp.prelude as dp
    import polars as pl
    from opendp.context import Context

    schema = polars_schema(metadata)
    frame_domain = domain(metadata, schema)
    for margin in margins(metadata):
        frame_domain = dp.with_margin(frame_domain, margin)
    (metric, d_in), (measure, d_out) = privacy_unit(metadata), loss(epsilon=epsilon, rho=rho, delta=delta)
    accountant = dp.c.make_adaptive_composition(frame_domain, metric, measure, d_in=d_in, d_mids=[d_out])
    if not accountant.check(d_in, d_out):
        raise ValueError("The one-query composition does not fit the privacy loss.")
    queryable = accountant(pl.LazyFrame(schema=schema))
    return Context(accountant=accountant, queryable=queryable, d_in=d_in, d_mids=[d_out])


class NoNoise(Exception):
    """The plan is private without noise: it releases nothing but what the metadata declares invariant."""


def resolve(query: LazyFrameQuery) -> Measurement:
    """The query's measurement, as `query.resolve()` finds it, with the noise scale solved directly.

    OpenDP's resolve searches the scale by bisection, building the measurement some 60
    times. A release's loss is c/s (ε) or c/s² (rho) in the global scale s, so the scale is
    solved from one measurement at s = 1, then accepted only if OpenDP's own privacy map
    of the measurement built with it fits the budget; otherwise OpenDP's search decides.
    Raises NoNoise for a plan whose release would carry no noise at all.
    """
    from opendp.measurements import make_private_lazyframe
    from opendp.mod import OpenDPException, binary_search

    plan = object.__getattribute__(query, "polars_plan")
    inner = object.__getattribute__(query, "_query")
    (input_domain, input_metric), measure = inner._chain, inner._output_measure
    d_in, d_out = inner._d_in, inner._d_out
    approximate = getattr(measure.type, "origin", None) == "Approximate"
    budget = d_out[0] if approximate else d_out
    power = 2 if "ZeroConcentrated" in str(measure) else 1

    def make(scale: float, threshold: int | None = None) -> Measurement:
        return make_private_lazyframe(
            input_domain, input_metric, measure, plan, global_scale=scale, threshold=threshold
        )

    def loss(scale: float) -> float:
        return make(scale, _NO_THRESHOLD).map(d_in)[0] if approximate else make(scale).map(d_in)

    unit = loss(1.0)  # an error here is the plan's, whatever the scale
    if unit == 0:
        raise NoNoise
    scale = (unit / budget) ** (1 / power)
    for _ in range(_SCALE_ATTEMPTS):
        spent = loss(scale)
        if spent < budget or (not approximate and spent == budget):
            break
        scale = math.nextafter(scale * (spent / budget) ** (1 / power), math.inf)
    else:
        return _resolved_by_opendp(query, make, d_in, d_out)
    if approximate:
        try:
            measurement = make(scale)
        except OpenDPException:  # the release needs a threshold on the group sizes
            threshold = binary_search(lambda t: make(scale, t).map(d_in)[1] < d_out[1], T=int)
            measurement = make(scale, threshold)
    else:
        measurement = make(scale)
    return measurement if measurement.check(d_in, d_out) else _resolved_by_opendp(query, make, d_in, d_out)


def _resolved_by_opendp(query: LazyFrameQuery, make: Any, d_in: Any, d_out: Any) -> Measurement:
    """OpenDP's own resolve, refusing the measurement it returns when it has no noise (NoNoise)."""
    from opendp.mod import OpenDPException

    try:
        if make(0.0).check(d_in, d_out):
            raise NoNoise
    except OpenDPException:
        pass
    return query.resolve()


def _columns(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return list(metadata["tableSchema"]["columns"])


def _nullable(column: dict[str, Any]) -> bool:
    """Nulls are possible unless the metadata says the column has none."""
    return not (column.get("required") is True or column.get("nullableProportion") == 0)


def _max_length(metadata: dict[str, Any]) -> int | None:
    value = metadata.get("maxLength") or metadata.get("publicLength")
    return int(value) if value else None


def _group_margin(by: list[str], described: dict[str, Any], *, boolean: bool, nullable: bool) -> Margin | None:
    """The margin of one grouping, or None when the metadata says nothing about it.

    A nullable column has one more group than its keys: null. The number of groups of a
    column group is only taken when the metadata states it.
    """
    from opendp.extras.polars import Margin

    keys = described.get("keyValues") or ([False, True] if boolean else None)
    listed = len(keys) if keys else described.get("maxNumPartitions")
    max_groups = int(listed) + nullable if listed else None
    max_length = int(described["maxLength"]) if described.get("maxLength") else None
    invariant_keys = described.get("invariantPublicKeys") is True
    if not (invariant_keys or max_groups or max_length):
        return None
    return Margin(by=by, max_length=max_length, max_groups=max_groups, invariant="keys" if invariant_keys else None)
