"""Smartnoise-SQL (spec §3.1): differentially private SQL over the dataset as table `df`.

What a query can observe is a function of the request and the metadata, or of one charged
release: the cost and every refusal come from parsing and rewriting the query against the
metadata (no data is read), the SQL that reaches the private rows is total (see
sqlite.py), and a query runs exactly once, whatever its result holds.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Hashable
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from django.conf import settings
from rest_framework import serializers

from datasets.connectors import metadata_digest
from datasets.connectors.base import DataConnector
from datasets.connectors.dummy import DummyConnector
from datasets.frames import dataframe_to_tight_json
from datasets.metadata import column_names
from lomas.errors import InvalidQuery
from lomas.requests import DatasetRequestSerializer, DeltaField, PositiveFloatField, StrictBooleanField, StrictCharField
from queries.libraries.base import Cost, DPAdapter, is_twin, remembered, request_scope, twin_connector
from queries.libraries.smartnoise_sql import postgres
from queries.libraries.smartnoise_sql.sqlite import grouping_columns, make_total, refusal, sql_file_reader

if TYPE_CHECKING:  # snsql is imported where it is used: web processes never load it
    from snsql import Mechanism, Stat
    from snsql.sql._mechanisms.base import AdditiveNoiseMechanism
    from snsql.sql.private_reader import PrivateReader
    from snsql.sql.reader.base import SqlReader
    from snsql.sql.reader.pandas import PandasReader

LIBRARY = "smartnoise_sql"
TABLE = "df"
# Request `mechanisms` keys that override snsql's default mechanism; other keys are ignored.
MECHANISM_STATS = ("count", "sum_int", "sum_large_int", "sum_float", "threshold")
EXECUTION_FAILED = "Error executing query: {reason}"
COST_FAILED = "Error obtaining cost: {reason}"


class CostRequest(DatasetRequestSerializer):
    """SmartnoiseSQLRequestModel."""

    query_str = StrictCharField(trim_whitespace=False)
    epsilon = PositiveFloatField()
    delta = DeltaField()
    mechanisms = serializers.DictField(child=StrictCharField())

    def validate_query_str(self, value: str) -> str:
        """At most LOMAS_SQL_MAX_CHARS characters: refused at submission, before any work."""
        if len(value) > settings.LOMAS_SQL_MAX_CHARS:
            raise serializers.ValidationError(
                f"Ensure this query has at most {settings.LOMAS_SQL_MAX_CHARS} characters (it has {len(value)})."
            )
        return value


class QueryRequest(CostRequest):
    """SmartnoiseSQLQueryModel."""

    postprocess = StrictBooleanField()


class SmartnoiseSqlAdapter(DPAdapter):
    """One smartnoise-sql request: parsed, rewritten and costed from the metadata alone, run once.

    validate() and cost() use a PrivateReader over no data (they only parse and rewrite);
    run() executes on the dataset's SQLite copy, made total (see sqlite.py), which
    is built once per process and thread and kept with the frame (see _sql_copy), or,
    for a dataset stored in PostgreSQL, inside its database (see postgres.py).
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

    def validate(self) -> None:
        """The mechanisms must be snsql's, the SQL one query on `df` and its columns that snsql can
        rewrite, and what it sends to SQLite total (else InvalidQuery or ExternalLibraryError); in a
        PostgreSQL dataset, also total there and planned by the database (no row is read)."""
        _ = self._mechanism_map
        _ = self._parsed_query
        _ = self._rewritten
        _ = self._planned_in_database

    def cost(self) -> Cost:
        """snsql's privacy cost of the query: its noisy aggregates composed (get_privacy_cost's
        odometer), from the rewritten query alone."""
        from snsql import Privacy
        from snsql.sql.odometer import OdometerHeterogeneous

        self.validate()
        reader, subquery = self._rewritten
        odometer = OdometerHeterogeneous(reader.privacy)
        with self.library_errors(COST_FAILED):
            for mechanism in reader._get_mechanisms(subquery):
                if mechanism is not None:
                    odometer.spend(Privacy(epsilon=mechanism.epsilon, delta=mechanism.delta))
            epsilon, delta = odometer.spent
        return Cost(epsilon=float(epsilon), delta=float(delta))

    def run(self) -> dict[str, Any]:
        """Execute once: a NaN goes out as null and no row as an empty table (never a re-run or an error)."""
        self.validate()
        reader = self._private_reader(self._sql_copy())
        with self.library_errors(EXECUTION_FAILED), np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            result = reader._execute_ast(self._parsed_query, postprocess=self.postprocess)
            if self.postprocess:
                columns, rows = list(result[0]), [list(row) for row in result[1:]]
            else:
                first = next(iter(result), None)  # the noise is drawn while iterating
                rows = [] if first is None else [list(first)]
                columns = [f"res_{position}" for position in range(len(self._rewritten[1]._select_symbols))]
        return {"type": LIBRARY, "df": dataframe_to_tight_json(pd.DataFrame(rows, columns=columns))}

    @classmethod
    def warm_up(cls) -> None:
        """Import snsql, and once per process run a grouped query on a few dummy rows of a made-up table:
        the parser's lexer and parse caches (ANTLR's DFA, some 0.5 s to fill) and the rewrite, noise-scale
        and SQLite paths are built before the first job instead of in it. No dataset is read."""
        super().warm_up()
        _warm_up_once(cls)

    @classmethod
    def prepare(cls, *, connector: DataConnector, metadata: dict[str, Any]) -> None:
        """The version's SQLite file and this process's reader of it, and the twin's SQLite copy."""
        super().prepare(connector=connector, metadata=metadata)
        body = {"query_str": "", "epsilon": 1.0, "delta": 0.0}
        for rows in (connector, twin_connector(metadata)):
            cls(body=body, connector=rows, metadata=metadata)._sql_copy()

    def _private_reader(self, sql_copy: SqlReader | None) -> PrivateReader:
        """A PrivateReader of this request's privacy over the SQL copy, or over no data (None).

        Over no data it can parse, rewrite and cost, and execute nothing.
        """
        from snsql import Privacy
        from snsql.sql.private_reader import PrivateReader
        from snsql.sql.reader.base import SqlReader
        from snsql.sql.reader.engine import Engine

        privacy = Privacy(epsilon=self.epsilon, delta=self.delta)
        privacy.mechanisms.map.update(self._mechanism_map)
        privacy.mechanisms.classes.update(_scale_cached_mechanisms())
        return PrivateReader(sql_copy or SqlReader(Engine.PANDAS), self._snsql_metadata, privacy=privacy)

    def _sql_copy(self) -> SqlReader:
        """snsql's SQLite copy of the rows (PandasReader), made total, or a reader of the PostgreSQL table.

        For a source with a machine copy it is the version's SQLite file, shared (see sqlite.py).
        Otherwise building it (the frame loaded into an in-memory SQLite database) is the slow part, and it
        only answers SELECTs, so it is kept: by the connector with the frame, and for the twin's rows
        (the same for every request on the metadata, so its speed tells nobody anything) in a small
        per-process cache. It is per thread, because each thread opens its own connection to an
        in-memory database.
        """
        if (table := self.connector.sql_table()) is not None:
            return postgres.postgres_reader(table)
        name = f"snsql-{metadata_digest(self._snsql_metadata)}-thread-{_thread_number()}"
        if not isinstance(self.connector, DummyConnector):
            shared = sql_file_reader(self.connector, self._snsql_metadata, grouping_columns(self.metadata))
            return shared or self.connector.derived(name, self._build_sql_copy)
        if not is_twin(self.connector):
            return self._build_sql_copy(self.connector.get_pandas())
        with _TWIN_COPIES_LOCK:
            if name in _TWIN_COPIES:
                _TWIN_COPIES.move_to_end(name)
                return _TWIN_COPIES[name]
        sql_copy = self._build_sql_copy(self.connector.get_pandas())
        with _TWIN_COPIES_LOCK:
            _TWIN_COPIES[name] = sql_copy
            while len(_TWIN_COPIES) > TWIN_COPIES:
                _TWIN_COPIES.popitem(last=False)
        return sql_copy

    def _build_sql_copy(self, frame: pd.DataFrame) -> PandasReader:
        from snsql.sql.reader.pandas import PandasReader

        return make_total(PandasReader(conn=frame, metadata=self._snsql_metadata))

    @cached_property
    def _request_key(self) -> tuple[Hashable, ...]:
        """What the parse and the rewrite are functions of: the request and the metadata (public inputs)."""
        mechanisms = tuple(sorted(self.mechanisms.items()))
        return (self.query_str, self.epsilon, self.delta, mechanisms, metadata_digest(self._snsql_metadata))

    @cached_property
    def _rewritten(self) -> tuple[PrivateReader, Any]:
        """A PrivateReader over no data and the SQL it would send to SQLite (its rewritten subquery),
        once checked to be total there: worked out by the twin, and reused by the real run of the same
        request (`remembered`)."""
        return remembered(("snsql-rewritten", *self._request_key), self._rewrite)

    def _rewrite(self) -> tuple[PrivateReader, Any]:
        reader = self._private_reader(None)
        with self.library_errors(COST_FAILED):
            subquery, _ = reader._rewrite_ast(self._parsed_query)
        if (reason := refusal(subquery)) is not None:
            raise InvalidQuery(reason)
        return reader, subquery

    @cached_property
    def _planned_in_database(self) -> bool:
        """For a dataset in PostgreSQL: the subquery is total there and planned (see postgres.py)."""
        table = self.connector.sql_table()
        if table is not None:
            subquery = self._rewritten[1]
            if (reason := postgres.refusal(subquery)) is not None:
                raise InvalidQuery(reason)
            postgres.check_plan(table, subquery)
        return True

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
        """The query parsed against the dataset's snsql metadata (no data is read), once per request:
        executing it reads the tree and rewrites a copy (snsql re-parses its text)."""
        return remembered(("snsql-parsed", *self._request_key), self._parse)

    def _parse(self) -> Any:
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


# The made-up table and query warm_up() runs: the constructs releases commonly use.
WARM_UP_METADATA: dict[str, Any] = {
    "@context": ["http://www.w3.org/ns/csvw", "csvw-safe-context.jsonld"],
    "@type": "Table",
    "maxContributions": 1,
    "maxLength": 1000,
    "tableSchema": {
        "columns": [
            {"@type": "Column", "name": "g", "datatype": "string", "keyValues": ["a", "b"], "maxNumPartitions": 2},
            {"@type": "Column", "name": "x", "datatype": "float", "minimum": 0.0, "maximum": 10.0},
            {"@type": "Column", "name": "k", "datatype": "int", "minimum": 0, "maximum": 100},
        ]
    },
}
WARM_UP_QUERY = (
    "SELECT g, COUNT(*) AS n, SUM(x) AS s, AVG(x) AS m, AVG(k) AS mk, SUM(k) AS sk, COUNT(k) AS ck FROM df "
    "WHERE x > 1.5 AND (g = 'a' OR k <= 3) GROUP BY g ORDER BY g"
)
WARM_UP_ROWS = 10


@cache
def _warm_up_once(adapter: type[SmartnoiseSqlAdapter]) -> None:
    body = {"query_str": WARM_UP_QUERY, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {}, "postprocess": True}
    with request_scope():
        connector = DummyConnector(WARM_UP_METADATA, WARM_UP_ROWS, 0)
        warm = adapter(body=body, connector=connector, metadata=WARM_UP_METADATA)
        warm.cost()
        warm.run()


# The rough Laplace scale above which snsql refuses a query (snsql.sql._mechanisms.laplace).
LAPLACE_SEARCHED_ABOVE = 10_000_000
# SQLite copies of dummy rows kept per process (the twin's, and recent dummy queries').
TWIN_COPIES = 16
_TWIN_COPIES: OrderedDict[str, PandasReader] = OrderedDict()
_TWIN_COPIES_LOCK = threading.Lock()

_THREAD = threading.local()
_THREAD_NUMBERS = itertools.count()


def _thread_number() -> int:
    """A number for the current thread, never reused by another thread of this process (unlike its ident)."""
    if not hasattr(_THREAD, "number"):
        _THREAD.number = next(_THREAD_NUMBERS)
    return _THREAD.number


@cache
def _scale_cached_mechanisms() -> dict[Mechanism, type[AdditiveNoiseMechanism]]:
    """snsql's mechanism classes, keeping the noise scales they find for the request.

    A scale is a binary search of some 40 ms per noisy aggregate, run whenever a query is
    rewritten (by the twin, then by the real run); it is a function of the mechanism, epsilon,
    delta, bounds and contributions only (public inputs), so the real run looks it up.
    """
    from snsql import Mechanism
    from snsql.sql._mechanisms import Gaussian, Laplace

    def scale_cached(kind: type[AdditiveNoiseMechanism]) -> type[AdditiveNoiseMechanism]:
        def _compute_noise_scale(self: AdditiveNoiseMechanism) -> None:
            def search() -> float:
                if kind is Laplace and (scale := _laplace_scale(self)) is not None:
                    return scale
                kind._compute_noise_scale(self)
                return self.scale

            key = ("snsql-noise-scale", kind, self.epsilon, self.delta, self.lower, self.upper, self.max_contrib)
            self.scale = remembered(key, search)

        return type(kind.__name__, (kind,), {"_compute_noise_scale": _compute_noise_scale})

    laplace, gaussian = scale_cached(Laplace), scale_cached(Gaussian)
    return {
        Mechanism.laplace: laplace,
        Mechanism.geometric: laplace,
        Mechanism.discrete_laplace: laplace,
        Mechanism.gaussian: gaussian,
    }


def _laplace_scale(mechanism: AdditiveNoiseMechanism) -> float | None:
    """The Laplace scale of a bounded sum in two OpenDP checks instead of snsql's binary search (some 80).

    The smallest scale meeting epsilon is sensitivity · contributions / epsilon, the sensitivity of a
    sum over [lower, upper] being max(|lower|, |upper|, upper - lower); OpenDP's float rounding puts
    its boundary 2⁻³⁰ to 2⁻²⁶ above that. The scale 2⁻²⁶ above it is returned once OpenDP passes it
    for the mechanism's epsilon and refuses one as far below; otherwise (or where snsql refuses the
    bounds) None, and snsql searches. So the scale is always one OpenDP accepts, and exceeds snsql's
    by less than 2·10⁻⁸.
    """
    import opendp.prelude as dp

    lower, upper, contributions = float(mechanism.lower), float(mechanism.upper), mechanism.max_contrib
    if (upper - lower) * contributions / mechanism.epsilon > LAPLACE_SEARCHED_ABOVE:
        return None  # snsql refuses the query: its search raises
    boundary = max(abs(lower), abs(upper), upper - lower) * contributions / mechanism.epsilon
    dp.enable_features("contrib")  # as snsql's search does
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    bounded_sum = (domain, dp.symmetric_distance()) >> dp.t.then_clamp(bounds=(lower, upper)) >> dp.t.then_sum()

    def passes(scale: float) -> bool:
        return (bounded_sum >> dp.m.then_laplace(scale)).check(contributions, mechanism.epsilon)

    above, below = boundary * (1 + 2**-26), boundary * (1 - 2**-26)
    return above if passes(above) and not passes(below) else None
