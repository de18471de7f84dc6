"""OpenDP (spec §3.3): polars plans built by the client through an OpenDP Context, released by the server.

The request's plan is hostile input. Intake (validate) reads it as plain data and refuses
Python objects, file or URL scans and sinks, foreign plugins, oversized plans and other
polars versions, and points OpenDP's plugin calls at the server's own library (plan.py).
Only then is it deserialized, with unpickling refused process-wide (guard.py), checked
again in polars' JSON form, admitted only if every expression in it evaluates on every
value (totality.py), and rebound onto a Context the server builds from the dataset's
metadata alone (context.py). The measurement is resolved from the plan and the metadata
only, on the twin, and released once on the private rows made to fit the metadata's domain.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from polars.exceptions import PanicException
from rest_framework import serializers

from datasets.connectors.base import DataConnector
from datasets.metadata import column_names
from lomas.errors import InvalidQuery, LomasError
from lomas.requests import DatasetRequestSerializer, DeltaField, StrictBooleanField, StrictCharField, StrictFloatField
from queries.libraries.base import Cost, DPAdapter, remembered

if TYPE_CHECKING:  # opendp and polars are imported where they are used: web processes never load them
    from opendp.context import Context
    from opendp.extras.polars import LazyFrameQuery
    from opendp.mod import Measurement

    from queries.libraries.opendp.plan import VettedPlan

LIBRARY = "opendp"
FIXED_DELTA = "Provide a fixed delta for this query."
NOT_PRIVATE = "The plan cannot be made differentially private on this dataset: {reason}"
EPSILON_OR_RHO = "Either epsilon or rho must be set (greater than 0), not both."
NO_NOISE = (
    "The plan releases no noisy statistic: it is private without noise on this dataset, which the "
    "server does not run. Release an OpenDP aggregate (dp.len, .dp.sum, .dp.mean, .dp.quantile, ...)."
)


class CostRequest(DatasetRequestSerializer):
    """OpenDPRequestModel: the plan as base64 and the privacy loss of the query."""

    opendp_json = StrictCharField(trim_whitespace=False)
    epsilon = StrictFloatField(min_value=0, allow_null=True)
    delta = DeltaField(allow_null=True)
    rho = StrictFloatField(min_value=0, allow_null=True)
    approx_zcdp = StrictBooleanField()  # accepted, not consulted (spec §3.3)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Exactly one of epsilon and rho is truthy."""
        if bool(attrs["epsilon"]) == bool(attrs["rho"]):
            raise serializers.ValidationError(EPSILON_OR_RHO)
        return attrs


class QueryRequest(CostRequest):
    """OpenDPQueryModel."""


class OpenDPAdapter(DPAdapter):
    """One OpenDP request: the plan vetted, resolved on the server's Context (metadata only), released once."""

    library: ClassVar[str] = LIBRARY
    cost_request = CostRequest
    query_request = QueryRequest
    library_exceptions = (PanicException,)  # polars reports Rust panics as a BaseException
    library_modules = ("polars", "opendp.prelude", "opendp.extras.polars", "queries.libraries.opendp.context",
                       "queries.libraries.opendp.totality")  # fmt: skip

    def __init__(self, *, body: dict[str, Any], connector: DataConnector, metadata: dict[str, Any]) -> None:
        super().__init__(body=body, connector=connector, metadata=metadata)
        self.opendp_json: str = body["opendp_json"]
        # Exactly one of epsilon and rho is truthy (CostRequest); the other is not used.
        self.epsilon: float | None = body.get("epsilon") or None
        self.rho: float | None = None if self.epsilon else body.get("rho")
        self.delta: float | None = body.get("delta")

    @classmethod
    def prepare(cls, *, connector: DataConnector, metadata: dict[str, Any]) -> None:
        """The version's conformed Arrow file (context.conformed_rows), then the warm-up on the twin."""
        from queries.libraries.opendp.context import conformed_rows

        super().prepare(connector=connector, metadata=metadata)
        conformed_rows(connector, metadata)

    @classmethod
    def warm_up_request(cls, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """dp.len() of the dataset's rows, at ε = 1."""
        import opendp.prelude as dp
        import polars as pl

        from queries.libraries.opendp.context import polars_schema

        plan = pl.LazyFrame(schema=polars_schema(metadata)).select(dp.len())
        return {
            "opendp_json": base64.b64encode(plan.serialize()).decode(),
            "epsilon": 1.0,
            "delta": None,
            "rho": None,
            "approx_zcdp": True,
        }

    def validate(self) -> None:
        """The budget parameters and the plan, read as data only; InvalidQuery if either is refused."""
        if self.rho is not None and not self.delta:  # zCDP is charged in (ε, δ): ε is read at δ
            raise InvalidQuery(FIXED_DELTA)
        _ = self._vetted

    def cost(self) -> Cost:
        """The (epsilon, delta) the Context's accountant implies, once the plan resolved on this dataset."""
        self.validate()
        _ = self._measurement
        return self._cost

    def run(self) -> dict[str, Any]:
        """Release the plan on the data, made to fit the metadata's domain: a polars frame as JSON text."""
        from queries.libraries.opendp.context import conformed_rows
        from queries.libraries.opendp.guard import plan_handling

        self.validate()
        measurement = self._measurement
        with self.library_errors("Error executing the OpenDP query: {reason}"), plan_handling():
            frame = measurement(conformed_rows(self.connector, self.metadata)).collect()
        return {"type": "opendp_polars", "value": frame.write_json()}

    @cached_property
    def _vetted(self) -> VettedPlan:
        """The plan as vetted (once per request: the real run reuses the twin's), reading only the
        metadata's columns."""
        vetted = remembered((LIBRARY, "vetted", self.opendp_json), self._vet)
        unknown = sorted(vetted.source_columns - set(column_names(self.metadata)))
        if unknown:
            raise InvalidQuery(f"The plan reads columns that are not in the dataset's metadata: {unknown}.")
        return vetted

    def _vet(self) -> VettedPlan:
        from queries.libraries.opendp.plan import MalformedPlan, vet

        limit = settings.LOMAS_OPENDP_MAX_PLAN_BYTES
        too_large = InvalidQuery(f"The plan is larger than the server accepts ({limit} bytes).")
        if len(self.opendp_json) > 4 * (limit // 3 + 1):
            raise too_large
        try:
            plan = base64.b64decode(self.opendp_json, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedPlan(
                "opendp_json is not base64 text (the client sends base64 of the serialized plan)."
            ) from None
        if len(plan) > limit:
            raise too_large
        return vet(plan, server_version=_server_dsl_version(), server_library=_server_opendp_library())

    @cached_property
    def _context(self) -> Context:
        """The server's Context: domain, margins and privacy unit from the metadata, over no data."""
        import opendp.prelude as dp

        from queries.libraries.opendp.context import build_context

        dp.enable_features(*settings.LOMAS_OPENDP_FEATURES)
        dp.disable_features("honest-but-curious")
        with self.library_errors("Error building the OpenDP context: {reason}"):  # the metadata and request only
            return build_context(self.metadata, epsilon=self.epsilon, rho=self.rho, delta=self._context_delta)

    @cached_property
    def _query(self) -> LazyFrameQuery:
        """The vetted plan, deserialized with unpickling refused, checked again and bound to the Context."""
        from queries.libraries.opendp.guard import plan_handling
        from queries.libraries.opendp.plan import MalformedPlan, check_plan
        from queries.libraries.opendp.totality import check_total

        try:
            with plan_handling():
                query = self._context.deserialize_polars_plan(self._vetted.plan)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # polars deprecates the JSON form, which is only read here
                    tree = json.loads(query.polars_plan.serialize(format="json"))
        except LomasError:
            raise
        except (Exception, *self.library_exceptions) as exc:
            raise MalformedPlan(f"The plan cannot be read by the server's polars: {type(exc).__name__}.") from exc
        server_library = _server_opendp_library()
        check_plan(tree, library_allowed=lambda path: path == server_library)
        with plan_handling():
            check_total(tree)
        return query

    @cached_property
    def _measurement(self) -> Measurement:
        """The plan made private on the metadata's domain and margins (no data is read).

        Resolved once per request: the real run reuses the twin's measurement, which depends
        on public inputs only.
        """
        metadata = json.dumps(self.metadata, sort_keys=True)
        key = (LIBRARY, "measurement", self._vetted.plan, metadata, self.epsilon, self.rho, self.delta)
        return remembered(key, self._resolve)

    def _resolve(self) -> Measurement:
        from queries.libraries.opendp.context import NoNoise, resolve
        from queries.libraries.opendp.guard import plan_handling

        query = self._query
        with self.library_errors(NOT_PRIVATE), plan_handling():
            try:
                return resolve(query)
            except NoNoise:
                raise InvalidQuery(NO_NOISE) from None

    @property
    def _context_delta(self) -> float | None:
        """The δ the Context may spend itself; with rho, the conversion to (ε, δ) needs the other half."""
        if self.rho is not None and self.delta:
            return self.delta / 2
        return self.delta

    @cached_property
    def _cost(self) -> Cost:
        """Spec §3.3: pure ε → (ε, 0); ε, δ → (ε, δ); rho, δ → the approximate-zCDP accountant converted to (ε, δ).

        The conversion of (rho, δ₁)-approximate zCDP gives ε(δ₂) at a total δ₁ + δ₂, so the
        Context spends at most δ/2 and ε is read at δ - δ₁: the charge (ε, δ) is the full
        guarantee, and δ is exactly the one requested.
        """
        import opendp.prelude as dp

        accountant, d_in = self._context.accountant, self._context.d_in
        with self.library_errors("Error obtaining cost: {reason}"):  # the request and the metadata only
            if self.rho is not None:
                profile, context_delta = dp.c.make_zCDP_to_approxDP(accountant).map(d_in)
                conversion_delta = self.delta - context_delta
                return Cost(epsilon=float(profile.epsilon(conversion_delta)), delta=float(self.delta))
            if self.delta is None:
                return Cost(epsilon=float(accountant.map(d_in)), delta=0.0)
            epsilon, delta = accountant.map(d_in)
        return Cost(epsilon=float(epsilon), delta=float(delta))


@cache
def _server_dsl_version() -> tuple[int, int]:
    """The DSL (major, minor) version of plans the server's polars writes and reads."""
    import polars as pl

    from queries.libraries.opendp.plan import dsl_version

    return dsl_version(pl.LazyFrame().serialize())


@cache
def _server_opendp_library() -> str:
    """The absolute path of the OpenDP library this server's polars plugins must load."""
    from opendp.extras.polars import _get_opendp_polars_lib_path

    return str(Path(_get_opendp_polars_lib_path()).resolve())
