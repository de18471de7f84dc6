"""Noise that exists: every OpenDP aggregate on every demo dataset is noised at the scale a DP engineer derives.

The hand derivation, from the metadata alone: one person adds or removes up to d =
maxContributions rows. A count then moves by d, a sum clamped to (L, U) by d·max(|L|, |U|),
the score of an alpha = a/b quantile (in lowest terms) by d·max(a, b - a). Under ε-DP the
Laplace scale is sensitivity/ε and the exponential mechanism's 2·sensitivity/ε; under
rho-zCDP the Gaussian and the exponential mechanism's (Gumbel noise) scale is
sensitivity/√(2·rho). A mean is a sum and a count, each at half the budget. With invariant
group keys, grouping changes none of these (a person's rows move a group's statistic,
never the set of groups), except the rounding slack OpenDP adds to float sums: 2·n²·2⁻⁵²
of the bound per group of at most n rows, over G groups (G times in ε, √G times in rho).
None of the scales may be 0.
"""

import base64
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import opendp.prelude as dp
import polars as pl
import pytest
from csvw_eo.csvw_to_opendp_context import csvw_to_opendp_context
from opendp.accuracy import summarize_polars_measurement

from datasets.connectors.dummy import DummyConnector
from queries.libraries.base import twin_connector
from queries.libraries.opendp.adapter import OpenDPAdapter
from tests.conftest import demo_metadata

EPSILON = 0.5
RHO = 0.08
QUANTILE = 0.5


@dataclass(frozen=True)
class Dataset:
    """A demo dataset, with a float and an integer column to aggregate, a filter and an invariant group key."""

    stem: str
    float_column: str | None
    int_column: str | None
    predicate: pl.Expr
    group_key: str | None


DATASETS = [
    Dataset("birthday", None, None, pl.col("birthday").dt.year() > 2000, None),
    Dataset("covid_synthetic", None, "temporal", pl.col("sex") == "female", "georegion"),
    Dataset("fso_income_synthetic", "income", "age", pl.col("region") == 1, "sex"),
    Dataset("iris", "petal_length", None, pl.col("species") == "setosa", None),
    Dataset("penguin", "body_mass_g", None, pl.col("sex") == "MALE", "species"),
    Dataset("pums", "income", "age", pl.col("married"), "race"),
    Dataset("titanic", "Age", "SibSp", pl.col("Name") == "Mr. Harry Elkins Widener", None),
]


def column_of(metadata: dict[str, Any], name: str) -> dict[str, Any]:
    return next(column for column in metadata["tableSchema"]["columns"] if column["name"] == name)


def bounds_of(metadata: dict[str, Any], name: str) -> tuple[Any, Any]:
    column = column_of(metadata, name)
    cast = float if column["datatype"] == "float" else int
    return cast(column["minimum"]), cast(column["maximum"])


def values(metadata: dict[str, Any], name: str) -> pl.Expr:
    """The column, nulls filled with its lower bound where the metadata allows nulls."""
    column = column_of(metadata, name)
    expr = pl.col(name)
    return expr.fill_null(bounds_of(metadata, name)[0]) if column.get("nullableProportion") else expr


def cases() -> list[Any]:
    found = []
    for dataset in DATASETS:
        kinds = ["len"]
        kinds += [f"{kind}:{dataset.float_column}" for kind in ("sum", "mean", "quantile") if dataset.float_column]
        kinds += [f"sum:{dataset.int_column}"] if dataset.int_column else []
        for kind in kinds:
            for filtered in (False, True):
                for grouped in (False, True) if dataset.group_key else (False,):
                    for loss in ("epsilon", "rho"):
                        shape = f"{'filtered' if filtered else 'all'}-{'grouped' if grouped else 'flat'}"
                        label = f"{dataset.stem}-{kind}-{shape}-{loss}"
                        found.append(pytest.param(dataset, kind, filtered, grouped, loss, id=label))
    return found


def plan_for(dataset: Dataset, metadata: dict[str, Any], kind: str, *, filtered: bool, grouped: bool) -> Any:
    def build(query: Any) -> Any:
        name, _, column = kind.partition(":")
        source = values(metadata, column) if column else pl.col(metadata["tableSchema"]["columns"][0]["name"])
        if filtered:
            source = source.filter(dataset.predicate)
        match name:
            case "len":
                aggregate = source.dp.len() if filtered else dp.len()
            case "sum":
                aggregate = source.dp.sum(bounds_of(metadata, column))
            case "mean":
                aggregate = source.dp.mean(bounds_of(metadata, column))
            case _:
                low, high = bounds_of(metadata, column)
                aggregate = source.dp.quantile(QUANTILE, [low + (high - low) * step / 10 for step in range(11)])
        return query.group_by(dataset.group_key).agg(aggregate) if grouped else query.select(aggregate)

    return build


def float_slack(metadata: dict[str, Any], group_key: str | None, loss: str) -> float:
    """OpenDP's rounding slack of a float sum, per unit of the bound (module docstring)."""
    rows, groups = metadata["maxLength"], 1
    if group_key:
        key = column_of(metadata, group_key)
        rows = key.get("maxLength", rows)
        groups = len(key["keyValues"]) + bool(key.get("nullableProportion"))
    return 2 * rows**2 * 2**-52 * (groups if loss == "epsilon" else math.sqrt(groups))


def expected(metadata: dict[str, Any], kind: str, loss: str, group_key: str | None) -> list[tuple[str, str, float]]:
    """(aggregate, distribution, scale) of each release, derived by hand (module docstring)."""
    contributions = metadata["maxContributions"]
    name, _, column = kind.partition(":")
    noise = "Laplace" if loss == "epsilon" else "Gaussian"

    def scale(sensitivity: float, share: int = 1) -> float:
        if loss == "epsilon":
            return sensitivity * share / EPSILON
        return sensitivity / math.sqrt(2 * RHO / share)

    if name == "len":
        return [("Frame Length" if column == "" else "Length", f"Integer {noise}", scale(contributions))]
    low, high = bounds_of(metadata, column)
    number = "Float" if isinstance(low, float) else "Integer"
    bound = max(abs(low), abs(high))
    sum_sensitivity = contributions * bound + (
        bound * float_slack(metadata, group_key, loss) if number == "Float" else 0
    )
    if name == "sum":
        return [("Sum", f"{number} {noise}", scale(sum_sensitivity))]
    if name == "mean":
        return [
            ("Sum", f"{number} {noise}", scale(sum_sensitivity, 2)),
            ("Length", f"Integer {noise}", scale(contributions, 2)),
        ]
    alpha = Fraction(QUANTILE)
    score = contributions * max(alpha.numerator, alpha.denominator - alpha.numerator)
    exponential = 2 * score / EPSILON if loss == "epsilon" else score / math.sqrt(2 * RHO)
    return [(f"{QUANTILE}-Quantile", "ExponentialMin" if loss == "epsilon" else "GumbelMin", exponential)]


def measurement_rows(dataset: Dataset, kind: str, *, filtered: bool, grouped: bool, loss: str) -> list[tuple[Any, ...]]:
    metadata = demo_metadata(dataset.stem)
    privacy = {"epsilon": EPSILON} if loss == "epsilon" else {"rho": RHO, "delta": 1e-9}
    client = csvw_to_opendp_context(
        metadata, DummyConnector(metadata, 100, 42).get_polars(), split_evenly_over=1, **privacy
    )
    plan = plan_for(dataset, metadata, kind, filtered=filtered, grouped=grouped)(client.query())
    body = {"opendp_json": base64.b64encode(plan.serialize()).decode(), "approx_zcdp": True,
            "epsilon": privacy.get("epsilon"), "delta": privacy.get("delta"), "rho": privacy.get("rho")}  # fmt: skip
    twin = OpenDPAdapter(body=body, connector=twin_connector(metadata), metadata=metadata)
    twin.cost()
    summary = summarize_polars_measurement(twin._measurement)
    return [(row["aggregate"], row["distribution"], row["scale"]) for row in summary.iter_rows(named=True)]


@pytest.mark.parametrize(("dataset", "kind", "filtered", "grouped", "loss"), cases())
def test_the_noise_scale_is_the_one_derived_from_the_metadata(
    dataset: Dataset, kind: str, filtered: bool, grouped: bool, loss: str
) -> None:
    metadata = demo_metadata(dataset.stem)
    kind_label = kind if not (kind == "len" and filtered) else f"len:{metadata['tableSchema']['columns'][0]['name']}"

    rows = measurement_rows(dataset, kind, filtered=filtered, grouped=grouped, loss=loss)

    want = expected(metadata, kind_label, loss, dataset.group_key if grouped else None)
    assert [row[:2] for row in rows] == [row[:2] for row in want]
    for (_, _, scale), (_, _, hand) in zip(rows, want, strict=True):
        assert scale > 0
        assert scale == pytest.approx(hand, rel=1e-9)
