"""The interface every DP library adapter implements.

An adapter knows one DP library and a dataframe source; it knows nothing of users,
budgets, jobs or HTTP. One instance serves exactly one request: cost() may prepare
work that run() reuses (a fitted model, a built reader). Adapter modules import
their DP library inside methods, so that web processes can read `requests`
without loading it.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from rest_framework import serializers

from budgets.amounts import to_charged_float
from datasets.connectors.base import DataConnector


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
    # Request shapes by job kind ("cost", "query", "dummy"), as lomas-client sends them.
    requests: ClassVar[dict[str, type[serializers.Serializer]]]
    # Whether /get_previous_queries lists this library's archived queries (lomas-client 0.5.1
    # raises on a dp_library it cannot decode; the archive keeps every real query regardless).
    in_previous_queries: ClassVar[bool] = True

    def __init__(self, *, body: dict[str, Any], connector: DataConnector, metadata: dict[str, Any]) -> None:
        self.body = body
        self.connector = connector
        self.metadata = metadata

    def validate(self) -> None:  # noqa: B027 (optional hook)
        """Check the request against the metadata, before any data is read.

        Raises InvalidQuery for a request that can never run on this dataset.
        """

    @abstractmethod
    def cost(self) -> Cost:
        """The privacy cost of the request; raises only InvalidQuery or ExternalLibraryError."""

    @abstractmethod
    def run(self) -> dict[str, Any]:
        """Run the request; returns the JSON-ready `result` of the QueryResponse (wire shape)."""
