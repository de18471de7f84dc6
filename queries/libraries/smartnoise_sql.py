"""Smartnoise-SQL (spec §3.1): differentially private SQL over the dataset as table `df`."""

from __future__ import annotations

import itertools
import math
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from rest_framework import serializers

from datasets.connectors import metadata_digest
from datasets.connectors.base import DataConnector
from datasets.frames import dataframe_to_tight_json
from datasets.metadata import column_names
from lomas.errors import ExternalLibraryError, InvalidQuery
from lomas.requests import DatasetRequestSerializer, PositiveFloatField
from queries.libraries.base import Cost, DPAdapter

if TYPE_CHECKING:  # snsql is imported where it is used: web processes never load it
    from snsql import Mechanism, Stat
    from snsql.sql.private_reader import PrivateReader

LIBRARY = "smartnoise_sql"
TABLE = "df"
# Request `mechanisms` keys that override snsql's default mechanism; other keys are ignored.
MECHANISM_STATS = ("count", "sum_int", "sum_large_int", "sum_float", "threshold")
NAN_RETRIES = 5  # re-executions after a result holding NaN (spec §2.5)
EXECUTION_FAILED = "Error executing query: {reason}"


class CostRequest(DatasetRequestSerializer):
    """SmartnoiseSQLRequestModel."""

    query_str = serializers.CharField(trim_whitespace=False)
    epsilon = PositiveFloatField()
    delta = serializers.FloatField(min_value=0)
    mechanisms = serializers.DictField(child=serializers.CharField())


class QueryRequest(CostRequest):
    """SmartnoiseSQLQueryModel."""

    postprocess = serializers.BooleanField()


class SmartnoiseSqlAdapter(DPAdapter):
    """One smartnoise-sql request: parsed against the metadata, costed and run by one PrivateReader.

    The dataset's SQLite copy is built once per process and thread and kept with the frame
    (see _get_reader); cost() builds the request's reader over it and run() reuses it.
    Messages from parsing and costing depend only on the query and the metadata and are
    passed on; an execution message is passed on only if dummy data reproduces it.
    """

    library: ClassVar[str] = LIBRARY
    cost_request = CostRequest
    query_request = QueryRequest
    library_modules = ("snsql", "snsql.sql.private_reader", "csvw_eo.csvw_to_smartnoise_sql")

    def __init__(self, *, body: dict[str, Any], connector: DataConnector, metadata: dict[str, Any]) -> None:
        super().__init__(body=body, connector=connector, metadata=metadata)
        self.query_str: str = body["query_str"]
        self.epsilon = float(body["epsilon"])
        self.delta = float(body["delta"])
        self.mechanisms: dict[str, str] = body.get("mechanisms") or {}
        self.postprocess: bool = body.get("postprocess", True)
        self._reader: PrivateReader | None = None

    def validate(self) -> None:
        """The mechanisms must be snsql's and the SQL one query on `df` and its columns, else InvalidQuery."""
        _ = self._mechanism_map
        _ = self._parsed_query

    def cost(self) -> Cost:
        """snsql's privacy cost of the query, summed over its noisy aggregates."""
        self.validate()
        reader = self._get_reader()
        try:
            epsilon, delta = reader.get_privacy_cost([self.query_str])
        except Exception as exc:
            raise ExternalLibraryError(f"Error obtaining cost: {exc}", library=LIBRARY) from exc
        return Cost(epsilon=float(epsilon), delta=float(delta))

    def run(self) -> dict[str, Any]:
        """Execute, re-executing up to NAN_RETRIES times while a computed value is NaN."""
        self.validate()
        for _ in range(1 + NAN_RETRIES):
            columns, rows = self._execute()
            if not any(_is_nan(value) for row in rows for value in row):
                return {"type": LIBRARY, "df": dataframe_to_tight_json(pd.DataFrame(rows, columns=columns))}
        raise InvalidQuery(
            f"SQL Reader generated NaN results. Epsilon: {self.epsilon} and Delta: {self.delta} "
            "are too small to generate output."
        )

    def _execute(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of one execution; without postprocess, the first raw row as res_0, res_1, ..."""
        reader = self._get_reader()
        try:
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN results are handled by run()
                result = reader.execute(self.query_str, postprocess=self.postprocess)
                if self.postprocess:
                    columns, rows = list(result[0]), [list(row) for row in result[1:]]
                else:
                    first = next(iter(result), None)  # the noise is drawn while iterating
                    rows = [] if first is None else [list(first)]
                    columns = [f"res_{position}" for position in range(len(rows[0]))] if rows else []
        except Exception as exc:
            reason = self.public_reason(exc, probe=SmartnoiseSqlAdapter.run, message=EXECUTION_FAILED)
            raise ExternalLibraryError(EXECUTION_FAILED.format(reason=reason), library=LIBRARY) from exc
        if not rows:
            raise ExternalLibraryError(
                f"SQL Reader generated empty results. Epsilon: {self.epsilon} and Delta: {self.delta} "
                "are too small to generate output.",
                library=LIBRARY,
            )
        return columns, rows

    def _get_reader(self) -> PrivateReader:
        """A PrivateReader of this request's privacy over the dataset's SQL copy.

        The SQL copy (snsql's PandasReader: the frame loaded into an in-memory SQLite
        database, the slow part) only answers SELECTs, so the connector keeps it with the
        frame and later queries reuse it. It is per thread, because each thread opens its
        own connection to an in-memory database. The PrivateReader, holding the privacy
        parameters, mechanisms and odometer, is new for each request.
        """
        from snsql import Privacy
        from snsql.sql.private_reader import PrivateReader
        from snsql.sql.reader.pandas import PandasReader

        if self._reader is None:
            privacy = Privacy(epsilon=self.epsilon, delta=self.delta)
            privacy.mechanisms.map.update(self._mechanism_map)
            name = f"snsql-{metadata_digest(self._snsql_metadata)}-thread-{_thread_number()}"
            sql_copy = self.connector.derived(
                name, lambda frame: PandasReader(conn=frame, metadata=self._snsql_metadata)
            )
            self._reader = PrivateReader(sql_copy, self._snsql_metadata, privacy=privacy)
        return self._reader

    @cached_property
    def _snsql_metadata(self) -> dict[str, Any]:
        from csvw_eo.csvw_to_smartnoise_sql import csvw_to_smartnoise_sql

        return csvw_to_smartnoise_sql(self.metadata, schema_name="", table_name=TABLE)

    @cached_property
    def _mechanism_map(self) -> dict[Stat, Mechanism]:
        from snsql import Mechanism, Stat

        overrides = {}
        for stat in MECHANISM_STATS:
            if stat not in self.mechanisms:
                continue
            name = self.mechanisms[stat]
            if name not in Mechanism.__members__:
                known = ", ".join(Mechanism.__members__)
                raise InvalidQuery(f"Unknown mechanism {name!r} for {stat}: expected one of {known}.")
            overrides[Stat[stat]] = Mechanism[name]
        return overrides

    @cached_property
    def _parsed_query(self) -> Any:
        """The query parsed against the dataset's snsql metadata (no data is read)."""
        from snsql.metadata import Metadata
        from snsql.sql.parse import QueryParser

        try:
            queries = QueryParser(Metadata.from_(self._snsql_metadata)).queries(self.query_str)
        except Exception as exc:
            raise InvalidQuery(self._parse_failure(exc)) from exc
        if len(queries) != 1:
            raise InvalidQuery(f"Expected exactly one SQL query, got {len(queries)}.")
        return queries[0]

    def _parse_failure(self, exc: Exception) -> str:
        """Name unknown tables or columns when the plain syntax parses; otherwise snsql's message."""
        from snsql.sql.parse import QueryParser

        try:
            syntax = QueryParser().queries(self.query_str)
        except Exception:  # the first failure is the one reported
            return f"Invalid SQL query: {exc}"
        tables = sorted({table.name for query in syntax for table in query.xpath("//Table")} - {TABLE})
        if tables:
            return f"Unknown table {', '.join(tables)}: the dataset is the table {TABLE} (write FROM {TABLE})."
        known = set(column_names(self.metadata))
        aliases = {named.name for query in syntax for named in query.select.namedExpressions if named.name}
        referenced = {column.name.rsplit(".", 1)[-1] for query in syntax for column in query.xpath("//Column")}
        missing = sorted(referenced - known - aliases)
        if missing:
            return f"Query requested columns not found: {missing}"
        return f"Invalid SQL query: {exc}"


_THREAD = threading.local()
_THREAD_NUMBERS = itertools.count()


def _thread_number() -> int:
    """A number for the current thread, never reused by another thread of this process (unlike its ident)."""
    if not hasattr(_THREAD, "number"):
        _THREAD.number = next(_THREAD_NUMBERS)
    return _THREAD.number


def _is_nan(value: Any) -> bool:
    """A computed value gone wrong; a null group key comes back as None and does not count."""
    return isinstance(value, float) and math.isnan(value)
