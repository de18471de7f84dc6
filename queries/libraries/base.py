"""The interface every DP library adapter implements.

An adapter knows one DP library and a dataframe source; it knows nothing of users,
budgets, jobs or HTTP. Adapter modules import their DP library inside methods, so
that web processes can read the request shapes without loading it.

The privacy contract (see the README, "What a researcher can learn"): everything a
researcher observes is computed without private rows, or is a charged DP release.
The service therefore drives an adapter in two roles:

- a *twin* on dummy rows generated from the metadata alone (`twin_connector`): the
  service calls `validate()`, `cost()` and `rehearse()` on it. Whatever fails there is
  refused for free with its own message, since it depends on public facts only, and
  the cost it reports is the one estimated and charged;
- the *real* adapter, on the private rows: the service calls only `run()`, whose
  outcome is charged whatever it is. It must not fail because of the values it reads
  (a failure is answered with one fixed message, charged, and logged for admins).
"""

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import import_module
from typing import Any, ClassVar, TypeVar

from rest_framework import serializers

from datasets.connectors.base import DataConnector
from datasets.connectors.dummy import DummyConnector
from lomas.errors import ExternalLibraryError, InvalidQuery, LomasError
from lomas.requests import DummyFieldsMixin

# Rows of the dummy twin that cost() and rehearse() run on, and its seed.
TWIN_ROWS = 100
TWIN_SEED = 0

Remembered = TypeVar("Remembered")
_REQUEST_MEMO: ContextVar[dict[Hashable, Any] | None] = ContextVar("lomas_request_memo", default=None)


@dataclass(frozen=True)
class Cost:
    """The (epsilon, delta) a query spends."""

    epsilon: float
    delta: float

    def to_wire(self) -> dict[str, float]:
        """CostResponse body."""
        return {"epsilon": self.epsilon, "delta": self.delta}

    def for_group(self, metadata: dict[str, Any]) -> "Cost":
        """The cost for a person who may hold `maxContributions` rows (k), of a mechanism that is
        (ε, δ)-DP for one row: (kε, k·e^((k-1)ε)·δ) by group privacy."""
        k = int(metadata.get("maxContributions", 1))
        return Cost(epsilon=k * self.epsilon, delta=k * math.exp((k - 1) * self.epsilon) * self.delta)


def check_work_limits(params: dict[str, Any], limits: dict[str, int], *, where: str, setting: str) -> None:
    """Refuse (400), before any work, a parameter that drives a job's work past the server's limit for it:
    a number above the limit, or null (no bound at all)."""
    for name, limit in limits.items():
        value = params.get(name, 0)
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > limit):
            raise InvalidQuery(f"{where}: {name} must be at most {limit} on this server (see {setting}).")


class DPAdapter(ABC):
    """One DP library behind validate / cost / run."""

    library: ClassVar[str]  # the wire library name, e.g. "smartnoise_sql"
    # Request shapes, as lomas-client sends them: a cost estimate's and a query's (a dummy
    # query's adds the dummy dataset's size and seed to the query's).
    cost_request: ClassVar[type[serializers.Serializer]]
    query_request: ClassVar[type[serializers.Serializer]]
    # The modules the adapter imports inside its methods: warm_up() loads them.
    library_modules: ClassVar[tuple[str, ...]] = ()
    # Whether /get_previous_queries lists this library's archived queries (lomas-client 0.5.1
    # raises on a dp_library it cannot decode; the archive keeps every real query regardless).
    in_previous_queries: ClassVar[bool] = True
    # Failures of the library that are not Exceptions, caught by library_errors() all the same.
    library_exceptions: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, *, body: dict[str, Any], connector: DataConnector, metadata: dict[str, Any]) -> None:
        self.body = body
        self.connector = connector
        self.metadata = metadata

    @classmethod
    def warm_up(cls) -> None:
        """Import the DP library: at worker start (the first query need not pay for it), and
        before a job's time limit starts, so that the limit never interrupts an import half-way
        (which would leave the module broken for the rest of the process)."""
        for module in cls.library_modules:
            import_module(module)

    @classmethod
    def request_serializer(cls, kind: str) -> type[serializers.Serializer]:
        """The request shape of this library's route for a job kind ("cost", "query" or "dummy")."""
        match kind:
            case "cost":
                return cls.cost_request
            case "query":
                return cls.query_request
            case "dummy":
                return _dummy_request(cls.query_request)
        raise ValueError(f"Unknown job kind {kind!r}.")

    @contextmanager
    def library_errors(self, message: str) -> Iterator[None]:
        """The one policy at the library boundary: inside the block a lomas error or a MemoryError (the
        job's memory limit) passes unchanged, any other error becomes an ExternalLibraryError whose text
        is `message` with `{reason}` set to the exception's type and text, and an interrupt (the time
        limit, a shutdown: not an Exception) is never caught. `library_exceptions` names a library's other failures."""
        try:
            yield
        except (LomasError, MemoryError):
            raise
        except (Exception, *self.library_exceptions) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise ExternalLibraryError(message.format(reason=reason), library=self.library) from exc

    @classmethod
    def prepare(cls, *, connector: DataConnector, metadata: dict[str, Any]) -> None:
        """Build what this library reads a dataset through, before its first query: the connector's
        machine copy and the dummy twin (an adapter with a copy of its own adds it), then run
        `warm_up_request` on the twin, so that the process's first query finds the library's code
        paths and caches warm. No private row is read."""
        connector.prepare()
        twin = twin_connector(metadata)
        twin.get_pandas()
        body = cls.warm_up_request(metadata)
        if body is None:
            return
        with request_scope():
            adapter = cls(body=body, connector=twin, metadata=metadata)
            adapter.validate()
            adapter.cost()
            adapter.run()

    @classmethod
    def warm_up_request(cls, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """A small request of this library on a dataset with this metadata (a query's validated body),
        run on the twin when the dataset is prepared; None when there is none."""
        return None

    def twin(self) -> "DPAdapter":
        """The same request on the dummy twin: rows generated from the metadata alone."""
        return type(self)(body=self.body, connector=twin_connector(self.metadata), metadata=self.metadata)

    def validate(self) -> None:  # noqa: B027 (optional hook)
        """Check the request against the metadata, before any data is read.

        Raises InvalidQuery for a request that can never run on this dataset.
        """

    @abstractmethod
    def cost(self) -> Cost:
        """The privacy cost of the request, a function of the request and the metadata alone.

        Called on the twin; raises only InvalidQuery or ExternalLibraryError.
        """

    def rehearse(self) -> None:
        """Run the request on the twin, so that what can fail fails before private rows are read.

        The default runs it whole; an adapter whose run is long may rehearse a cheaper form of it
        that exercises the same checks.
        """
        self.run()

    @abstractmethod
    def run(self) -> dict[str, Any]:
        """Run the request; returns the JSON-ready `result` of the QueryResponse (wire shape).

        On private rows it spends exactly the twin's cost() and must be total: no error that
        depends on the values it reads.
        """


@contextmanager
def request_scope() -> Iterator[None]:
    """The lifetime of one request's memo (see `remembered`): the service runs each job in one."""
    token = _REQUEST_MEMO.set({})
    try:
        yield
    finally:
        _REQUEST_MEMO.reset(token)


def remembered(key: Hashable, compute: Callable[[], Remembered]) -> Remembered:
    """`compute()`, worked out once per request: what the twin finds from public inputs, the real run
    reuses. Nothing outlives the request, so no answer time tells a researcher what another asked."""
    memo = _REQUEST_MEMO.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def is_twin(connector: DataConnector) -> bool:
    """Whether the connector's rows are a twin's (the same for every request on the metadata)."""
    return isinstance(connector, DummyConnector) and (connector.nb_rows, connector.seed) == (TWIN_ROWS, TWIN_SEED)


def twin_connector(metadata: dict[str, Any]) -> DummyConnector:
    """The dummy rows a twin adapter runs on: TWIN_ROWS rows from the metadata, seeded.

    Generated once per process and metadata version; like every frame, they must not be modified.
    """
    return _twin_connector(json.dumps(metadata, sort_keys=True))


@lru_cache(maxsize=32)
def _twin_connector(metadata_json: str) -> DummyConnector:
    return DummyConnector(json.loads(metadata_json), TWIN_ROWS, TWIN_SEED)


@cache
def _dummy_request(query_request: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The query's request shape with the dummy dataset's size and seed."""
    return type(f"Dummy{query_request.__name__}", (DummyFieldsMixin, query_request), {"__doc__": query_request.__doc__})
