"""Datasets stored as a PostgreSQL table (SQL_DB).

The database URL is never stored with the dataset: its `credentials_name` names an entry of
settings.LOMAS_SQL_CREDENTIALS, `{"name": "postgresql://..."}`, read from the environment or a
secrets file, and no message names more than the table and the credentials name.

Every connection is read-only (`default_transaction_read_only`) with a statement timeout
(LOMAS_SQL_STATEMENT_TIMEOUT_SECONDS). The rows are read as the metadata's columns only
(`select_sql`): numeric columns as PostgreSQL `numeric`, whose arithmetic, sums and absolute
values never overflow, so a query run inside the database (SmartNoise-SQL) is total on them.
"""

import re
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any

import pandas as pd
import psycopg
from django.conf import settings
from psycopg import sql

from datasets.connectors.base import DataConnector, DatasetUnavailable
from datasets.connectors.reading import read_typed
from datasets.metadata import column_dtypes

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# The PostgreSQL types a metadata column's rows may have, by the column's pandas dtype.
_STORED_TYPES = {
    "Int64": {"smallint", "integer", "bigint"},
    "float64": {"smallint", "integer", "bigint", "numeric", "real", "double precision"},
    "boolean": {"boolean"},
    "string": {"text", "character varying", "character"},
    "datetime64[ns]": {"timestamp without time zone", "timestamp with time zone", "date"},
    "timedelta64[ns]": {"interval"},
}
_NUMERIC = frozenset({"Int64", "float64"})


def sql_credentials(name: str) -> str:
    """The LOMAS_SQL_CREDENTIALS database URL `name`; DatasetUnavailable (a 500) if there is none."""
    url = settings.LOMAS_SQL_CREDENTIALS.get(name) if name else None
    if not url:
        raise DatasetUnavailable(f"Could not find credentials for private dataset (credentials_name {name!r}).")
    return url


def table_identifier(table: str) -> sql.Identifier:
    """`[schema.]table` as a quoted identifier; ValueError unless both parts are plain identifiers."""
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ValueError(f"{table!r} is not a [schema.]table name of letters, digits and underscores.")
    return sql.Identifier(*parts)


class PostgresConnector(DataConnector):
    """Reads a PostgreSQL table, typed and ordered by the metadata's columns.

    The fingerprint is the table's storage file and its row counters (pg_stat_all_tables): it
    changes with a rewrite, an insert, update or delete (the counters lag by up to a second).
    """

    def __init__(self, *, table: str, credentials_name: str, metadata: dict[str, Any]) -> None:
        self.table, self.metadata = table, metadata
        self.source = f"PostgreSQL table {table} ({credentials_name})"
        try:
            self.identifier = table_identifier(table)
        except ValueError as exc:
            raise DatasetUnavailable(f"Dataset source {self.source} is not a valid table name.") from exc
        self._url = sql_credentials(credentials_name)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """A read-only connection with the statement timeout; DatasetUnavailable if it cannot be opened.

        The database's messages are not passed on: they may name the host or the user.
        """
        timeout_ms = int(settings.LOMAS_SQL_STATEMENT_TIMEOUT_SECONDS * 1000)
        options = f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
        try:
            connection = psycopg.connect(self._url, options=options, connect_timeout=10, autocommit=True)
        except psycopg.Error as exc:
            raise DatasetUnavailable(f"Cannot connect to {self.source} ({type(exc).__name__}).") from None
        with connection:
            try:
                yield connection
            except BaseException:
                connection.cancel_safe()  # an interrupted statement (the job's time limit) stops in the database
                raise

    def get_pandas(self) -> pd.DataFrame:
        """The metadata's columns of every row, copied out as CSV (COPY) and typed like a file's."""
        self.check_columns()
        buffer = BytesIO()
        query = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(self.select_sql(numeric=False))
        with self.connect() as connection, connection.cursor() as cursor:
            try:
                with cursor.copy(query) as copy:
                    for chunk in copy:
                        buffer.write(chunk)
            except psycopg.Error as exc:
                raise DatasetUnavailable(f"Cannot read {self.source} ({type(exc).__name__}).") from None
        return read_typed(buffer.getvalue(), name="rows.csv", metadata=self.metadata, label=self.source)

    def fingerprint(self) -> Hashable:
        """The table's (relfilenode, inserted, updated, deleted rows)."""
        query = (
            "SELECT pg_relation_filenode(relid), n_tup_ins, n_tup_upd, n_tup_del "
            "FROM pg_stat_all_tables WHERE relid = to_regclass(%s)"
        )
        with self.connect() as connection:
            row = connection.execute(query, (self.identifier.as_string(connection),)).fetchone()
        return tuple(row) if row else None

    def sql_table(self) -> "PostgresConnector":
        """This table: queries can run inside its database."""
        return self

    def select_sql(self, *, numeric: bool = True) -> sql.Composed:
        """SELECT of the metadata's columns from the table, each named as in the metadata.

        With `numeric` (for SQL run inside the database), numeric columns are cast to PostgreSQL
        numeric (which never raises: their stored types are checked), and a name with capitals is
        also given in lower case, as PostgreSQL reads it unquoted.
        """
        columns = []
        for column, dtype in column_dtypes(self.metadata).items():
            name = sql.Identifier(column)
            value = sql.SQL("CAST({} AS numeric)").format(name) if numeric and dtype in _NUMERIC else name
            aliases = {column, column.lower()} if numeric else {column}
            columns.extend(sql.SQL("{} AS {}").format(value, sql.Identifier(alias)) for alias in sorted(aliases))
        return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(columns), self.identifier)

    def check_columns(self) -> None:
        """DatasetUnavailable unless every metadata column is in the table with a stored type that fits
        its datatype (the same for every query: it reads only the catalogue)."""
        schema, table = ["public", *self.table.split(".")][-2:]
        query = (
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        )
        with self.connect() as connection:
            stored = dict(connection.execute(query, (schema, table)).fetchall())
        for column, dtype in column_dtypes(self.metadata).items():
            if stored.get(column) not in _STORED_TYPES.get(dtype, set()):
                raise DatasetUnavailable(f"Dataset source {self.source} has no column {column} of a {dtype} type.")


# The PostgreSQL type a table written from a frame gives each metadata column, by its pandas dtype.
_WRITTEN_TYPES = {
    "Int64": "bigint",
    "float64": "double precision",
    "boolean": "boolean",
    "string": "text",
    "datetime64[ns]": "timestamp",
    "timedelta64[ns]": "interval",
}
# Rows serialised per COPY write.
_COPY_ROWS = 100_000


def table_write(*, credentials_name: str, table: str, frame: pd.DataFrame, metadata: dict[str, Any]) -> int:
    """(Re)create `table` in the database of a LOMAS_SQL_CREDENTIALS entry, typed by the metadata, and COPY the
    frame's metadata columns into it, in one transaction; returns the rows written. An admin path: it writes."""
    identifier = table_identifier(table)
    dtypes = column_dtypes(metadata)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(_WRITTEN_TYPES[dtype]))
        for column, dtype in dtypes.items()
    )
    schema = table.rpartition(".")[0]
    with psycopg.connect(sql_credentials(credentials_name), connect_timeout=10) as connection:
        if schema:
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(identifier))
        connection.execute(sql.SQL("CREATE TABLE {} ({})").format(identifier, columns))
        names = sql.SQL(", ").join(sql.Identifier(column) for column in dtypes)
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(identifier, names)
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for start in range(0, len(frame), _COPY_ROWS):
                copy.write(frame[list(dtypes)].iloc[start : start + _COPY_ROWS].to_csv(index=False, header=False))
    return len(frame)
