"""The interface every DP library adapter implements.

An adapter knows one DP library and a dataframe source; it knows nothing of users,
budgets, jobs or HTTP. One instance serves exactly one request: cost() may prepare
work that run() reuses (a fitted model, a built reader). Adapter modules import
their DP library inside methods, so that web processes can read the request shapes
without loading it.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any, ClassVar

from rest_framework import serializers

from budgets.amounts import to_charged_float
from datasets.connectors.base import DataConnector
from datasets.connectors.dummy import DummyConnector
from lomas.errors import ExternalLibraryError
from lomas.requests import DummyFieldsMixin

# Dummy rows a twin adapter runs on to tell whether a library error depends on private data.
PROBE_ROWS = 100


@dataclass(frozen=True)
class Cost:
    """The (epsilon, delta) a query spends."""

    epsilon: float
    delta: float

    def to_wire(self) -> dict[str, float]:
        """CostResponse body: the amounts a budget is charged (15 significant digits, rounded up)."""
        return {"epsilon": to_charged_float(self.epsilon), "delta": to_charged_float(self.delta)}


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

    def validate(self) -> None:  # noqa: B027 (optional hook)
        """Check the request against the metadata, before any data is read.

        Raises InvalidQuery for a request that can never run on this dataset.
        """

    def public_reason(
        self, exc: BaseException, *, probe: Callable[["DPAdapter"], object] | None = None, message: str = ""
    ) -> str:
        """What the client may read of a library error: its text can quote private values.

        The text is public when this adapter runs on dummy data, or when `probe` (the same
        step, run by a twin adapter on dummy data generated from the metadata alone) fails
        with the same `message` ("{reason}" stands for the text). Otherwise only the
        exception type is told.
        """
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(self.connector, DummyConnector):
            return reason
        if probe is not None:
            twin = type(self)(
                body=self.body, connector=DummyConnector(self.metadata, PROBE_ROWS, 0), metadata=self.metadata
            )
            try:
                probe(twin)
            except ExternalLibraryError as failure:
                if failure.message == message.format(reason=reason):
                    return reason
            except Exception:  # noqa: S110 (any other outcome withholds the text)
                pass
        return f"{type(exc).__name__} (details withheld: they may depend on the private data)"

    @abstractmethod
    def cost(self) -> Cost:
        """The privacy cost of the request; raises only InvalidQuery or ExternalLibraryError."""

    @abstractmethod
    def run(self) -> dict[str, Any]:
        """Run the request; returns the JSON-ready `result` of the QueryResponse (wire shape)."""


@cache
def _dummy_request(query_request: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The query's request shape with the dummy dataset's size and seed."""
    return type(f"Dummy{query_request.__name__}", (DummyFieldsMixin, query_request), {"__doc__": query_request.__doc__})
