"""Execution on private data is total for SmartNoise-SQL: every function and operator its grammar admits,
as snsql rewrites it for SQLite, runs on extreme values without raising, and a condition on one private row
cannot change the answer's kind.

Attack (issue 11, case 1): a construct that raises on some values (ABS(-2^63), an overflowing SUM) placed
under `CASE WHEN <condition on private values>` turned the condition into a free yes/no oracle.
"""

from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from budgets.models import LedgerEntry
from budgets.services import budget_grant
from datasets.connectors.base import DataConnector
from datasets.connectors.postgres import PostgresConnector, table_write
from datasets.services import dataset_create
from lomas.errors import InvalidQuery
from queries.libraries.smartnoise_sql.adapter import SmartnoiseSqlAdapter
from queries.libraries.smartnoise_sql.sqlite import TOTAL_MATH_FUNCTIONS
from tests.conftest import SQL_CREDENTIALS_NAME, demo_metadata

INT64_MIN, INT64_MAX = "-9223372036854775808", "9223372036854775807"
# snsql prints a float literal of 1e16 or more with a lowercase exponent it cannot parse again (a free,
# data-independent refusal), so the largest floats and infinity are written as powers.
LITERALS = ["NULL", "''", "'abc'", INT64_MIN, INT64_MAX, "POWER(10, 308)", "POWER(-10, 309)", "POWER(10, 400)",
            "99999999999999999999999", "0", "-1", "0.5"]  # fmt: skip
# snsql's grammar reads VARCHAR(3) as a syntax error, and ROUND without digits as an error: both refused free.
CASTS = ["INTEGER", "FLOAT", "BOOLEAN", "TIMESTAMP", "DATE", "TIME", "VARCHAR", "CHAR(2)"]
ARITHMETIC = ["+", "-", "*", "/", "%"]
COMPARISONS = ["=", "<>", "!=", "<", "<=", ">", ">="]


def constructs(values: list[str], partners: list[str]) -> dict[str, list[str]]:
    """Every construct snsql admits and sends to SQLite, each applied to the values (operators: to each value
    and each partner) as value expressions."""
    others = values[1:] + values[:1]
    pairs = list(zip(values, others, strict=True))

    def when(condition: str) -> str:
        return f"CASE WHEN {condition} THEN 1 ELSE 0 END"

    families: dict[str, list[str]] = {fn: [f"{fn}({v})" for v in values] for fn in sorted(TOTAL_MATH_FUNCTIONS)}
    families |= {fn: [f"{fn}({v})" for v in values] for fn in ("UPPER", "LOWER", "TRIM")}
    families |= {f"CAST AS {t}": [f"CAST({v} AS {t})" for v in values] for t in CASTS}
    families |= {f"a {op} b": [f"{v} {op} {w}" for v in values for w in partners] for op in ARITHMETIC}
    families |= {f"a {op} b": [when(f"{v} {op} {w}") for v in values for w in partners] for op in COMPARISONS}
    families |= {
        "POWER": [f"POWER({v}, {p})" for v in values for p in ("1000", "-1", "0.5", "0")],
        "ROUND": [f"ROUND({v}, {digits})" for v in values for digits in ("0", "2", "30", "-3")],
        "COALESCE": [f"COALESCE({v}, {w})" for v, w in pairs] + [f"COALESCE(NULL, {v}, {w})" for v, w in pairs],
        "IIF": [f"IIF({v} > {w}, {v}, {w})" for v, w in pairs],
        "CASE WHEN": [f"CASE WHEN {v} > {w} THEN {v} ELSE {w} END" for v, w in pairs],
        "CASE value WHEN": [f"CASE {v} WHEN {w} THEN {v} END" for v, w in pairs],
        "BETWEEN": [when(f"{v} {between} {w} AND {v}") for v, w in pairs for between in ("BETWEEN", "NOT BETWEEN")],
        "IN": [when(f"{v} {inside} ({w}, NULL, {INT64_MIN})") for v, w in pairs for inside in ("IN", "NOT IN")],
        "IS": [when(f"{v} IS {k}") for v in values for k in ("NULL", "NOT NULL", "TRUE", "FALSE")],
        "NOT, AND, OR": [when(f"NOT {v} > {w} AND {w} < {v} OR {v} = {w}") for v, w in pairs],
        "PI, RANDOM": [f"PI() * {v}" for v in values] + [f"RANDOM() % {v}" for v in values],
        "CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP": [
            when(f"{now} > {v}") for now in ("CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP") for v in values
        ],
    }  # fmt: skip
    return families


def evaluated(expressions: list[str]) -> str:
    """One value expression that makes SQLite evaluate every expression on every row (a sum never short-cuts)."""
    return " + ".join(f"CASE WHEN ({expression}) IS NULL THEN 0 ELSE 1 END" for expression in expressions)


# Private rows made of extreme values: ±2**63, NaN (stored as NULL), ±inf, empty and long strings.
EXTREME_ROWS = pd.DataFrame(
    {
        "i": pd.array([0, 1, -1, 2**63 - 1, -(2**63), None, 7, -7], dtype="Int64"),
        "f": [0.0, -0.0, 1e308, -1e308, np.inf, -np.inf, np.nan, 5e-324],
        "s": ["", "x" * 100_000, "é€😀", INT64_MIN, "1e999", None, "it's", "   "],
    }
)
EXTREME_METADATA = {
    "@context": ["http://www.w3.org/ns/csvw", "csvw-safe-context.jsonld"], "@type": "Table",
    "maxContributions": 1, "maxLength": 8, "publicLength": 8,
    "tableSchema": {"columns": [
        {"@type": "Column", "name": "i", "datatype": "int", "nullableProportion": 0.2, "minimum": -(2**62),
         "maximum": 2**62},
        {"@type": "Column", "name": "f", "datatype": "float", "nullableProportion": 0.2, "minimum": -1e3,
         "maximum": 1e3},
        {"@type": "Column", "name": "s", "datatype": "string", "nullableProportion": 0.2},
    ]},
}  # fmt: skip
ON_EXTREME_ROWS = constructs(
    ["i", "f", "s", *LITERALS], ["i", "f", "s", "NULL", INT64_MIN, "POWER(10, 400)", "0", "-1"]
)


class ExtremeRows(DataConnector):
    def get_pandas(self) -> pd.DataFrame:
        return EXTREME_ROWS


def run_on_extreme_rows(query: str, **body: Any) -> dict[str, Any]:
    request = {"query_str": query, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {}, "postprocess": True, **body}
    return SmartnoiseSqlAdapter(body=request, connector=ExtremeRows(), metadata=EXTREME_METADATA).run()


@pytest.mark.parametrize("family", ON_EXTREME_ROWS)
def test_every_admitted_construct_runs_on_extreme_values(family: str) -> None:
    query = f"SELECT COUNT(*) AS n FROM df WHERE {evaluated(ON_EXTREME_ROWS[family])} >= 0"

    result = run_on_extreme_rows(query, postprocess=False)

    assert result["df"]["columns"] == ["res_0"]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT SUM(i) AS s, AVG(i) AS a, COUNT(i) AS c FROM df",
        "SELECT s, SUM(i) AS t FROM df GROUP BY s",
        "SELECT COUNT(DISTINCT s) AS n, SUM(f) AS t FROM df",
    ],
)
def test_aggregates_run_on_extreme_values(query: str) -> None:
    # The sum of i, clamped to ±2**62, overflows 64-bit integers on these rows.
    result = run_on_extreme_rows(query, epsilon=1e13, postprocess=False)

    assert result["type"] == "smartnoise_sql"


# The job path on TITANIC: the same constructs on extreme literals and its own columns, under a condition
# that holds for exactly one passenger, or for none.
ON_TITANIC = constructs(
    ["Name", "Age", "NULL", "''", INT64_MIN, INT64_MAX, "POWER(10, 400)", "0.5"],
    ["NULL", INT64_MIN, "POWER(10, 400)", "0", "-1"],
)
ONE_PASSENGER = "Name = 'Mr. Owen Harris Braund'"
NO_PASSENGER = "Name = 'Mr. Nobody At All'"


@pytest.fixture
def titanic(alice: Any) -> Any:
    dataset = dataset_create(name="TITANIC", metadata=demo_metadata("titanic"), path="titanic.csv")
    budget_grant(user=alice, dataset=dataset, epsilon=1000, delta=0.01)
    return dataset


def _answer(api: Any, submit: Any, query: str) -> tuple[int, Any, Any, Any]:
    """What a researcher sees of a real query besides the noise: status, error, result type and columns."""
    body = {"dataset_name": "TITANIC", "query_str": query, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {},
            "postprocess": True}  # fmt: skip
    accepted = submit(api, "smartnoise_sql_query", body)
    assert accepted.status_code == 202, accepted.content
    job = api.get(f"/api/status/{accepted.json()['uid']}")
    released = (job.json().get("result") or {}).get("result") or {}
    return job.status_code, job.json().get("error"), released.get("type"), (released.get("df") or {}).get("columns")


@pytest.mark.django_db
@pytest.mark.parametrize("family", ON_TITANIC)
def test_a_construct_under_a_condition_on_one_private_row_answers_as_without_it(family, titanic, alice_api, submit):
    oracle = "SELECT COUNT(*) AS n FROM df WHERE CASE WHEN {cond} THEN {expr} ELSE 1 END = 1"
    expression = evaluated(ON_TITANIC[family])

    matching, not_matching = (
        _answer(alice_api, submit, oracle.format(cond=cond, expr=expression)) for cond in (ONE_PASSENGER, NO_PASSENGER)
    )

    assert matching == not_matching == (200, None, "smartnoise_sql", ["n"])
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).count() == 2


# The same constructs on PostgreSQL (a dataset stored there runs its SQL inside the database): the extreme
# rows in a table, plus a row holding a real NaN (the copy stores NaN as NULL).
@pytest.fixture
def extreme_table(sql_credentials: str) -> PostgresConnector:
    table_write(credentials_name=SQL_CREDENTIALS_NAME, table="extreme_rows", frame=EXTREME_ROWS,
                metadata=EXTREME_METADATA)  # fmt: skip
    with psycopg.connect(sql_credentials, autocommit=True) as connection:
        connection.execute("INSERT INTO extreme_rows (f) VALUES ('NaN')")
    return PostgresConnector(table="extreme_rows", credentials_name=SQL_CREDENTIALS_NAME, metadata=EXTREME_METADATA)


def admitted(query: str, table: PostgresConnector, **body: Any) -> SmartnoiseSqlAdapter | None:
    """The adapter of a query on the table, once validated (refusals and the database's plan: no row is read),
    or None if it is refused."""
    request = {"query_str": query, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {}, "postprocess": False, **body}
    adapter = SmartnoiseSqlAdapter(body=request, connector=table, metadata=EXTREME_METADATA)
    try:
        adapter.validate()
    except InvalidQuery:
        return None
    return adapter


def admitted_subset(expressions: list[str], table: PostgresConnector) -> list[str]:
    """The expressions admitted on the table one by one, found by halving the refused lists."""
    if admitted(ONE_QUERY.format(evaluated(expressions)), table):
        return expressions
    if len(expressions) == 1:
        return []
    middle = len(expressions) // 2
    return admitted_subset(expressions[:middle], table) + admitted_subset(expressions[middle:], table)


ONE_QUERY = "SELECT COUNT(*) AS n FROM df WHERE {} >= 0"
# The families PostgreSQL refuses (before any row is read); it admits some of each other one.
REFUSED_ON_POSTGRESQL = frozenset(
    {"ACOS", "ASIN", "ATAN", "ATANH", "COS", "DEGREES", "EXP", "LN", "LOG", "LOG10", "LOG2", "SIN", "SQRT", "TAN",
     "POWER", "IIF", "PI, RANDOM", *(f"CAST AS {t}" for t in CASTS)}
)  # fmt: skip


# POWER is refused on PostgreSQL, so its literals (the largest floats) would only make every family a mix of
# refused and admitted expressions to sort out; the table's float column holds ±1e308 and ±inf instead.
ON_POSTGRESQL = constructs(
    ["i", "f", "s", *(literal for literal in LITERALS if not literal.startswith("POWER"))],
    ["i", "f", "s", "NULL", INT64_MIN, "0", "-1"],
)


@pytest.mark.parametrize("family", ON_POSTGRESQL)
def test_every_construct_admitted_on_postgresql_runs_on_extreme_values(
    family: str, extreme_table: PostgresConnector
) -> None:
    if family in REFUSED_ON_POSTGRESQL:
        assert admitted(ONE_QUERY.format(evaluated(ON_POSTGRESQL[family])), extreme_table) is None
        return
    kept = admitted_subset(ON_POSTGRESQL[family], extreme_table)

    result = admitted(ONE_QUERY.format(evaluated(kept)), extreme_table).run()

    assert result["df"]["columns"] == ["res_0"]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT SUM(i) AS s, AVG(i) AS a, COUNT(i) AS c FROM df",
        "SELECT s, SUM(i) AS t FROM df GROUP BY s",
        "SELECT COUNT(DISTINCT s) AS n, SUM(f) AS t, AVG(f) AS m FROM df",
        "SELECT VARIANCE(f) AS v, STDDEV(f) AS sd FROM df",
    ],
)
def test_aggregates_run_on_extreme_values_in_postgresql(query: str, extreme_table: PostgresConnector) -> None:
    adapter = admitted(query, extreme_table, epsilon=1e13)

    result = adapter.run()

    assert result["type"] == "smartnoise_sql"
