"""SQLite, the engine smartnoise-sql's rewritten queries run on: made total for every construct admitted.

snsql rewrites a query into an exact aggregation (its *subquery*) that the database runs
on the private rows, then adds noise in Python. Whatever in that subquery can fail
depending on the values it reads is an oracle on the private data, so:

- the constructs the subquery may hold are an allow-list (`refusal`): everything SQLite
  evaluates without raising whatever the values, and nothing else. A construct outside it
  is refused before any data is read;
- the constructs of the grammar that raise on some values are replaced by total versions
  on the connection snsql uses (`make_total`): `ABS` (integer overflow on -2**63) and
  `FLOOR` (SQLAlchemy installs Python's math.floor, which raises on infinities, text and
  huge floats) by application functions with SQLite's own results otherwise, and `SUM`
  (integer overflow of the running sum) by SQLite's `TOTAL`, which sums in floating point:
  it returns 0.0 where SUM returns NULL, and snsql turns NULL into 0.0 before adding
  noise, so the release is unchanged.

The private rows are an SQLite database file built once per dataset version and machine
beside the columnar copy (`sql_file_reader`), opened read-only and immutable by every
process, with the total functions installed on each of its connections; sources that keep
no machine copy (dummy rows) get an in-memory copy (`make_total`), as snsql builds it.
The file holds, for each column the metadata declares categorical, an index led by that
column and covering every other one: a query grouped by it reads the rows in its order
instead of sorting them all (a sort is most of a grouped query's time on large tables).
An index changes the order rows are read in, never what a construct evaluates to, so the
subquery stays total and its answer the same (floating-point sums up to their rounding).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets.connectors import metadata_digest
from datasets.connectors.base import DataConnector

if TYPE_CHECKING:  # snsql is imported where it is used: web processes never load it
    from snsql._ast.tokens import Sql
    from snsql.sql.reader.pandas import PandasReader

INT64_MIN = -(2**63)
# At most this many covering indexes in a dataset's SQLite file (each about as large as its table).
GROUPING_INDEXES = 8

# Nodes of snsql's AST that SQLite evaluates without raising, whatever the values: structure,
# column references and literals, operators (integer overflow turns into a float, division and
# modulo by zero into NULL), conditionals, comparisons and casts.
TOTAL_NODES = frozenset(
    {
        "Query", "Select", "From", "Where", "Aggregate", "Having", "Order", "Limit", "Top", "Seq",
        "Relation", "Table", "AliasedSubquery", "AliasedRelation", "Join", "TableColumn",
        "BooleanJoinCriteria", "UsingJoinCriteria", "NamedExpression", "NestedExpression", "Expression",
        "Column", "Literal", "AllColumns", "GroupingExpression", "SortItem",
        "ArithmeticExpression", "CaseExpression", "WhenExpression", "IIFFunction", "CastFunction",
        "BooleanCompare", "ColumnBoolean", "NestedBoolean", "LogicalNot", "PredicatedExpression",
        "InCondition", "BetweenCondition", "IsCondition",
        "UpperFunction", "LowerFunction", "TrimFunction", "CoalesceFunction", "RoundFunction", "PowerFunction",
        "CurrentDateFunction", "CurrentTimeFunction", "CurrentTimestampFunction",
        "RankingFunction", "OverClause",
    }
)  # fmt: skip
# SQLite's math functions return NULL outside their domain and ±inf on overflow; ABS and FLOOR are made total.
TOTAL_MATH_FUNCTIONS = frozenset(
    {"ABS", "CEIL", "CEILING", "FLOOR", "SIGN", "SQRT", "EXP", "LN", "LOG", "LOG10", "LOG2",
     "SIN", "COS", "TAN", "ASIN", "ACOS", "ATAN", "ATANH", "DEGREES"}
)  # fmt: skip
TOTAL_BARE_FUNCTIONS = frozenset({"PI", "RANDOM"})
# SUM runs as TOTAL (see make_total); COUNT, AVG, MIN and MAX never raise in SQLite.
TOTAL_AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX"})
TOTAL_COMPARISONS = frozenset({"=", "==", "<>", "!=", "<", "<=", ">", ">=", "AND", "OR"})
# What the grammar admits but SQLite does not have (it would fail on every dataset alike).
MISSING_IN_SQLITE = {
    "CharLengthFunction": "CHAR_LENGTH",
    "PositionFunction": "POSITION",
    "SubstringFunction": "SUBSTRING ... FROM ... FOR",
    "ConcatFunction": "CONCAT",
    "TruncFunction": "TRUNC/TRUNCATE",
    "ChooseFunction": "CHOOSE",
    "ExtractFunction": "EXTRACT",
    "DayNameFunction": "DAYNAME",
}
REFUSED = "{construct} cannot be used in this query: {reason}."


def refusal(subquery: Sql) -> str | None:
    """Why the SQL that reaches SQLite holds a construct outside the allow-list, or None."""
    for node in _nodes(subquery):
        if (reason := _not_total(node)) is not None:
            return reason
    return None


def _not_total(node: Sql) -> str | None:
    kind = type(node).__name__
    name = str(getattr(node, "name", "")).upper()
    missing = "the SQL engine has no such function"
    checks = [
        (kind in MISSING_IN_SQLITE, MISSING_IN_SQLITE.get(kind), missing),
        (kind == "MathFunction" and name not in TOTAL_MATH_FUNCTIONS, name, missing),
        (kind == "BareFunction" and name not in TOTAL_BARE_FUNCTIONS, f"{name}()", missing),
        (
            kind == "AggFunction" and name not in TOTAL_AGGREGATES,
            name,
            "only COUNT, SUM, AVG, MIN and MAX run on the SQL engine",
        ),
        (
            kind == "BooleanCompare" and str(getattr(node, "op", "")).upper() not in TOTAL_COMPARISONS,
            f"The operator {getattr(node, 'op', '')}",
            "the SQL engine does not have it",
        ),
        (
            kind == "CoalesceFunction" and len(getattr(node, "expressions", ())) < 2,
            "COALESCE",
            "it needs two arguments",
        ),
        (
            kind not in TOTAL_NODES | {"MathFunction", "BareFunction", "AggFunction", *MISSING_IN_SQLITE},
            kind,
            "it is not known to run safely on the SQL engine",
        ),
    ]
    for refused, construct, reason in checks:
        if refused:
            return REFUSED.format(construct=construct, reason=reason)
    return None


def _nodes(root: Sql) -> Iterator[Sql]:
    """The root and every AST node under it."""
    from snsql._ast.tokens import Sql

    pending = [root]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(child for child in node.children() if isinstance(child, Sql))


def make_total(sql_copy: PandasReader) -> PandasReader:
    """Install the total ABS, FLOOR and SUM on snsql's SQLite copy of the data (this thread's connection)."""
    with sql_copy.db_engine.connect() as connection:
        install_total_functions(connection.connection.dbapi_connection)
    sql_copy.serializer = TotalSumSerializer()
    return sql_copy


def install_total_functions(database: sqlite3.Connection, *_: Any) -> None:
    """The total ABS and FLOOR on one SQLite connection (they replace the built-in ones there)."""
    database.create_function("abs", 1, total_abs, deterministic=True)
    database.create_function("floor", 1, total_floor, deterministic=True)


def grouping_columns(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The columns a release groups by: those the metadata declares categorical (with their keys or
    a number of partitions), the first GROUPING_INDEXES of them."""
    columns = metadata.get("tableSchema", {}).get("columns", [])
    categorical = [column["name"] for column in columns if "keyValues" in column or "maxNumPartitions" in column]
    return tuple(categorical[:GROUPING_INDEXES])


def sql_file_reader(
    connector: DataConnector, snsql_metadata: dict[str, Any], grouped: Sequence[str] = ()
) -> PandasReader | None:
    """A reader of the dataset version's SQLite file, made total; None if the source keeps no machine copy.

    The file is built once per machine (the rows written as snsql's PandasReader writes them, so
    the SQL sees the same types, with a covering index led by each `grouped` column); each process
    opens it read-only and immutable, once.
    """
    metadata_json = json.dumps(snsql_metadata, sort_keys=True)
    name = f".snsql-{metadata_digest({'metadata': snsql_metadata, 'grouped': list(grouped)})[:16]}.sqlite"
    path = connector.shared_file(name, lambda target: _write_sql_file(target, connector, snsql_metadata, grouped))
    return None if path is None else _file_reader(str(path), metadata_json)


def _write_sql_file(
    path: Path, connector: DataConnector, snsql_metadata: dict[str, Any], grouped: Sequence[str]
) -> None:
    from snsql.metadata import Metadata
    from sqlalchemy import create_engine, event

    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _bulk_load)
    try:
        frame = connector.get_pandas()
        for table_name in Metadata.from_(snsql_metadata).m_tables:
            table = table_name.replace(".", "_")
            frame.to_sql(table, con=engine, index=False, chunksize=100_000, method=_insert_rows)
            with engine.begin() as connection:
                for number, column in enumerate(name for name in grouped if name in frame.columns):
                    covered = [column, *(other for other in frame.columns if other != column)]
                    columns = ", ".join(_quoted(name) for name in covered)
                    connection.exec_driver_sql(
                        f"CREATE INDEX {_quoted(f'{table}_grouped_{number}')} ON {_quoted(table)} ({columns})"
                    )
    finally:
        engine.dispose()


def _quoted(identifier: str) -> str:
    """An SQLite identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def _insert_rows(table: Any, connection: Any, keys: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    """pandas' rows (missing values already None) inserted by the driver in one executemany: the
    values SQLAlchemy's inserts store (datetimes as its SQLite text), without its per-row processing."""
    dates = {position for position, key in enumerate(keys) if table.frame[key].dtype.kind == "M"}
    statement = str(table.table.insert().compile(dialect=connection.dialect, column_keys=keys))
    if dates:
        rows = (
            tuple(_datetime_text(value) if position in dates else value for position, value in enumerate(row))
            for row in rows
        )
    connection.exec_driver_sql(statement, list(rows))


def _datetime_text(value: Any) -> Any:
    """A datetime as SQLAlchemy stores it in SQLite ("YYYY-MM-DD HH:MM:SS.ffffff"); None stays."""
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _bulk_load(database: sqlite3.Connection, *_: Any) -> None:
    """No journal and no syncing while the file is written: an unfinished file is never renamed into place."""
    database.execute("PRAGMA journal_mode=OFF")
    database.execute("PRAGMA synchronous=OFF")


@lru_cache(maxsize=16)
def _file_reader(path: str, metadata_json: str) -> PandasReader:
    """snsql's PandasReader over the SQLite file instead of an in-memory copy, shared by the process's threads."""
    from snsql.metadata import Metadata
    from snsql.sql.reader.base import SqlReader
    from snsql.sql.reader.pandas import PandasReader
    from sqlalchemy import create_engine, event

    class FileReader(PandasReader):
        def __init__(self) -> None:
            SqlReader.__init__(self, self.ENGINE)
            self.metadata = Metadata.from_(json.loads(metadata_json))
            self.table_names = list(self.metadata.m_tables)
            self.db_engine = create_engine(f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true")
            event.listen(self.db_engine, "connect", install_total_functions)
            self.serializer = TotalSumSerializer()

    return FileReader()


def total_abs(value: Any) -> Any:
    """SQLite's abs() without its one failure: abs(-2**63) is 2**63 as a float (as -(-2**63) is)."""
    if isinstance(value, int):
        return float(-value) if value == INT64_MIN else abs(value)
    if isinstance(value, float):
        return abs(value)
    return _builtin("abs", value)


def total_floor(value: Any) -> Any:
    """SQLite's floor(): an integer stays, a float is floored as a float (infinities stay)."""
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return float(math.floor(value)) if math.isfinite(value) else value
    return _builtin("floor", value)


_BUILTIN = threading.local()


def _builtin(function: str, value: str | bytes | None) -> Any:
    """SQLite's built-in `function` of a text, a blob or NULL (its own conversion to a number),
    on a plain connection of this thread that keeps the built-in."""
    if not hasattr(_BUILTIN, "connection"):
        _BUILTIN.connection = sqlite3.connect(":memory:")
    return _BUILTIN.connection.execute(f"SELECT {function}(?)", (value,)).fetchone()[0]


class TotalSumSerializer:
    """snsql's SQL text for SQLite (PandasSerializer: the AST as text), with every SUM run as TOTAL."""

    def serialize(self, query: Sql) -> str:
        """The query as SQLite text; the AST is left as it was."""
        from snsql._ast.expressions.sql import AggFunction

        sums = [node for node in _nodes(query) if isinstance(node, AggFunction) and node.name.upper() == "SUM"]
        names = [node.name for node in sums]
        for node in sums:
            node.name = "TOTAL"
        try:
            return str(query)
        finally:
            for node, name in zip(sums, names, strict=True):
                node.name = name
