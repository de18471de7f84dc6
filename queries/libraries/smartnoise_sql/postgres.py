"""PostgreSQL, the engine smartnoise-sql's rewritten queries run on for a dataset stored in PostgreSQL.

The rewritten subquery (see sqlite.py) runs inside the table's database, on a read-only connection
with a statement timeout, over `WITH df AS (SELECT <the metadata's columns> FROM <table>)`. The rule
is the same as on SQLite: once private rows are read, nothing may fail depending on their values.

- numeric columns reach the query as PostgreSQL `numeric` (datasets.connectors.postgres), whose
  `+ - *`, ABS, CEIL, FLOOR, SIGN, ROUND, SUM and AVG never overflow within the products allowed
  here (`MAX_PRODUCTS`), and NaN and infinities go through;
- divisions and modulos divide by `NULLIF(divisor, 0)`: NULL where the divisor is zero, as in SQLite;
- what PostgreSQL could still raise on some values is refused (`refusal`): casts, POWER, the other
  math functions (their domains: SQRT of a negative, LN of zero, EXP overflowing) and PI() or
  RANDOM() in arithmetic (double precision, which raises on overflow);
- before any row is read the query is planned (`EXPLAIN`): what fails on every table alike (a type
  mismatch, a missing function) is refused there, free, with PostgreSQL's message.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from datasets.connectors.postgres import PostgresConnector
from lomas.errors import InvalidQuery
from queries.libraries.smartnoise_sql.sqlite import REFUSED

if TYPE_CHECKING:
    from snsql._ast.tokens import Sql

# Math functions that are total on numeric (NaN and ±infinity included).
TOTAL_MATH_FUNCTIONS = frozenset({"ABS", "CEIL", "CEILING", "FLOOR", "SIGN"})
REFUSED_NODES = {"CastFunction": "CAST", "PowerFunction": "POWER", "IIFFunction": "IIF"}
# Most products and quotients in one query: numeric holds 131072 digits before the point, and each
# factor read from a double precision column has at most 309.
MAX_PRODUCTS = 64
# Integers a float holds exactly: results below it come back as ints.
EXACT_INTEGERS = 2**53
NOT_ON_POSTGRES = "it may fail on some values in PostgreSQL"
PLANNING_FAILED = "The query cannot run on this dataset's database: {reason}"


def refusal(subquery: Sql) -> str | None:
    """Why the SQL that reaches PostgreSQL holds a construct that could raise there, or None.

    Run after sqlite.refusal (the twin runs on SQLite), so only constructs it admits are seen.
    """
    for kind, construct in REFUSED_NODES.items():
        if subquery.xpath(f"//{kind}"):
            return REFUSED.format(construct=construct, reason=NOT_ON_POSTGRES)
    for function in subquery.xpath("//MathFunction"):
        if str(function.name).upper() not in TOTAL_MATH_FUNCTIONS:
            return REFUSED.format(construct=str(function.name).upper(), reason=NOT_ON_POSTGRES)
    arithmetic = subquery.xpath("//ArithmeticExpression")
    if any(node.xpath("//BareFunction") for node in arithmetic):
        return REFUSED.format(construct="PI() or RANDOM() in arithmetic", reason=NOT_ON_POSTGRES)
    if sum(node.op in ("*", "/", "%") for node in arithmetic) > MAX_PRODUCTS:
        return REFUSED.format(construct=f"More than {MAX_PRODUCTS} products", reason=NOT_ON_POSTGRES)
    return None


def query_text(table: PostgresConnector, subquery: Sql) -> sql.Composed:
    """The subquery as PostgreSQL text over the table's rows, every divisor through NULLIF."""
    divisions = [node for node in subquery.xpath("//ArithmeticExpression") if node.op in ("/", "%")]
    divisors = [node.right for node in divisions]
    for node in divisions:
        node.right = _NullIfZero(node.right)
    try:
        text = str(subquery)
    finally:
        for node, divisor in zip(divisions, divisors, strict=True):
            node.right = divisor
    return sql.SQL("WITH df AS ({}) {}").format(table.select_sql(), sql.SQL(text))


def check_plan(table: PostgresConnector, subquery: Sql) -> None:
    """The query planned (not run) in the table's database; InvalidQuery with PostgreSQL's message if it
    cannot be (the same for every row the table may hold), DatasetUnavailable if the table is unfit."""
    table.check_columns()
    with table.connect() as connection:
        try:
            connection.execute(sql.SQL("EXPLAIN {}").format(query_text(table, subquery)))
        except psycopg.Error as exc:
            reason = exc.diag.message_primary or type(exc).__name__
            raise InvalidQuery(PLANNING_FAILED.format(reason=reason)) from None


def postgres_reader(table: PostgresConnector) -> Any:
    """An snsql reader that runs the rewritten subquery in the table's database.

    It reads as snsql's PANDAS engine, as the twin's reader does, so the subquery is rewritten
    exactly as it was checked; only the execution goes to PostgreSQL.
    """
    from snsql.sql.reader.base import SqlReader
    from snsql.sql.reader.engine import Engine

    class PostgresRowsReader(SqlReader):
        def __init__(self) -> None:
            super().__init__(Engine.PANDAS)
            self.serializer = None

        def _execute_ast(self, query: Sql, *ignore: Any, accuracy: bool = False) -> list[Any]:
            with table.connect() as connection, connection.cursor() as cursor:
                cursor.execute(query_text(table, query))
                names = tuple(column.name for column in cursor.description or ())
                return [names, *(tuple(_plain(value) for value in row) for row in cursor)]

    return PostgresRowsReader()


def _plain(value: Any) -> Any:
    """A numeric result as SQLite gives it: an integer as an int (below 2**53), any other as a float
    (a huge or infinite one is ±inf, NaN stays), which snsql's noise can be added to."""
    if not isinstance(value, Decimal):
        return value
    if value.is_finite() and value == value.to_integral_value() and abs(value) < EXACT_INTEGERS:
        return int(value)
    return float(value)


class _NullIfZero:
    """`NULLIF(divisor, 0)` in the serialised SQL, around a divisor of snsql's AST."""

    def __init__(self, divisor: Sql) -> None:
        self.divisor = divisor

    def __str__(self) -> str:
        return f"NULLIF({self.divisor}, 0)"
