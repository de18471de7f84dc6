"""Smartnoise-Synth (spec §3.2): differentially private synthetic data from one fitted synthesizer.

What leaves the server is a DP release or public: the table transformer is built and fitted
from the csvw-eo metadata alone (categories, bounds), never from the private rows; the cost
is the synthesizer's accounting computed from the request and the metadata (no fit, no row);
the returned model holds nothing computed exactly on rows (see `_without_training_data`).
Synthesizers whose accounting reads the rows are refused (`REFUSED`), dpctgan is trained by
`dpctgan.py` as its accountant assumes, and what MWEM (its histogram domain and
total) and MST (its known total) would take from the private row count comes from the metadata.
rehearse() runs the same path on the twin with the least work, so that it stays cheap.

Custom `constraints` are hostile input: they are checked against the metadata on every value a
column can take (`_check_total`) before any row is read, so that the real fit cannot fail, or
produce a non-finite value, because of what the rows hold.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import math
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from csvw_eo.datatypes import XSD_GROUP_MAP, DataTypesGroups
from django.conf import settings
from rest_framework import serializers

from datasets.connectors.base import DataConnector
from datasets.frames import dataframe_to_tight_json
from lomas.errors import ExternalLibraryError, InvalidQuery
from lomas.requests import DatasetRequestSerializer, DeltaField, PositiveFloatField, StrictBooleanField, StrictCharField
from queries.libraries.base import Cost, DPAdapter, remembered

if TYPE_CHECKING:  # snsynth and torch are imported where they are used: web processes never load them
    from snsynth.transform.base import ColumnTransformer
    from snsynth.transform.table import TableTransformer

    from queries.libraries.smartnoise_synth.dpctgan import TrainingPlan

LIBRARY = "smartnoise_synth"
SAMPLES_TYPE = "sn_synth_samples"
MARGINAL_SYNTHS = ("aim", "mwem", "mst")  # fitted on binned ("cube") data
GAN_SYNTHS = ("dpctgan", "patectgan", "pategan", "dpgan")  # fitted on min-max scaled data
SYNTH_NAMES = (*MARGINAL_SYNTHS, "pacsynth", *GAN_SYNTHS)
GAN_EPOCH_DEFAULTS = {"dpctgan": 300}  # the library's default
BINS = 10
MARGINAL_DEFAULT_DELTA = 1e-9  # aim's and mst's own default
PATEGAN_MIN_ROWS = 1000
# Synthesizers the server refuses, and why (their spend or their training reads the rows).
REFUSED = {
    "pacsynth": "pacsynth synthesizer not supported due to Rust panic. Please select another Synthesizer.",
    "patectgan": "patectgan is not offered: its PATE accounting is computed from the teachers' votes on the private "
    "rows and its teacher count from the private row count, so its cost would read the data. Use dpctgan.",
    "pategan": "pategan is not offered: its PATE accounting is computed from the teachers' votes on the private "
    "rows, so its cost would read the data. Use dpctgan.",
    "dpgan": "dpgan is not offered: it sets its gradient clipping bound from gradient norms measured on the "
    "private rows, which no accountant covers. Use dpctgan.",
}
ESTIMATED_SYNTHS = ("aim", "mst")  # fitted by graphical-model estimation, which a rehearsal skips
REHEARSAL_SAMPLES = 20  # rows a rehearsal samples: the same code path as the real run, on fewer rows
# What a rehearsal changes in the synthesizer's settings to do the least work (dpctgan: one step).
REHEARSAL_PARAMS: dict[str, dict[str, int]] = {"mwem": {"iterations": 1, "mult_weights_iterations": 1}}
MWEM_WIDE_ROWS = 10_000  # MWEM measures 3-way marginals above this many rows, 2-way below (its own rule)
PRIVACY_ID_FAKE = "uuid4"
# Faker methods a custom AnonymizationTransformer may name.
FAKES = frozenset({"uuid4", "name", "first_name", "last_name", "email", "phone_number", "address", "city", "pyint"})
CONSTRAINTS_MODULE = "smartnoise-synth"  # the envelope smartnoise-synth-logger writes
TRANSFORMER_PREFIXES = ("_ssynth_transformer:", "_ssynth_datetime_transformer:")
# XLA set to compile quickly: AIM and MST fit with mbi, which compiles new JAX functions for every
# estimation, and at XLA's default optimisation compiling them takes longer than running them.
XLA_FAST_COMPILE = {"--xla_backend_optimization_level": "0", "--xla_llvm_disable_expensive_passes": "true"}


class CostRequest(DatasetRequestSerializer):
    """SmartnoiseSynthRequestModel."""

    synth_name = serializers.ChoiceField(choices=SYNTH_NAMES)
    epsilon = PositiveFloatField()
    delta = DeltaField(allow_null=True)
    select_cols = serializers.ListField(child=StrictCharField())
    synth_params = serializers.DictField()
    nullable = StrictBooleanField()
    constraints = StrictCharField(allow_blank=True, trim_whitespace=False)


class QueryRequest(CostRequest):
    """SmartnoiseSynthQueryModel."""

    return_model = StrictBooleanField()
    condition = StrictCharField(allow_blank=True, trim_whitespace=False)
    nb_samples = serializers.IntegerField(min_value=1)

    def validate_nb_samples(self, value: int) -> int:
        """At most LOMAS_SYNTH_MAX_SAMPLES rows."""
        if value > settings.LOMAS_SYNTH_MAX_SAMPLES:
            raise serializers.ValidationError(f"Ensure this value is at most {settings.LOMAS_SYNTH_MAX_SAMPLES}.")
        return value


# --- synth_params: the constructor arguments a request may set, and their checks -----------------

ParamCheck = Callable[[str, Any], Any]


def _integer(low: int = 1, high: int | None = None) -> ParamCheck:
    def check(name: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise InvalidQuery(f"synth_params['{name}'] must be an integer {bounds}.")
        return value

    return check


def _number(high: float | None = None) -> ParamCheck:
    def check(name: str, value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= (high or np.inf):
            bounds = f"in (0, {high}]" if high is not None else "greater than 0"
            raise InvalidQuery(f"synth_params['{name}'] must be a number {bounds}.")
        return float(value)

    return check


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidQuery(f"synth_params['{name}'] must be true or false.")
    return value


def _layers(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 8:
        raise InvalidQuery(f"synth_params['{name}'] must be a list of 1 to 8 layer sizes.")
    return tuple(_integer(1, 4096)(name, size) for size in value)


def _splits(name: str, value: Any) -> list[list[int]]:
    if not isinstance(value, list) or not all(isinstance(split, list) and split for split in value):
        raise InvalidQuery(f"synth_params['{name}'] must be a list of non-empty lists of column positions.")
    return [[_integer(0)(name, position) for position in split] for split in value]


def _one_of(*options: Any) -> ParamCheck:
    def check(name: str, value: Any) -> Any:
        if value not in options:
            raise InvalidQuery(f"synth_params['{name}'] must be one of {list(options)}.")
        return value

    return check


_GAN_COMMON: dict[str, ParamCheck] = {
    "embedding_dim": _integer(1, 4096),
    "generator_dim": _layers,
    "discriminator_dim": _layers,
    "generator_lr": _number(1.0),
    "generator_decay": _number(1.0),
    "discriminator_lr": _number(1.0),
    "discriminator_decay": _number(1.0),
    "batch_size": _integer(2, 100_000),
    "discriminator_steps": _integer(1, 100),
    "epochs": _integer(1),
    "loss": _one_of("cross_entropy", "wasserstein"),
}
# Constructor keyword arguments a request may set, by synthesizer (epsilon and delta come from the request).
SYNTH_PARAMS: dict[str, dict[str, ParamCheck]] = {
    "mwem": {
        "q_count": _integer(1, 100_000),
        "iterations": _integer(1, 10_000),
        "splits": _splits,
        "split_factor": _integer(1, 1000),
        "marginal_width": _integer(1, 10),
        "add_ranges": _flag,
        "measure_only": _flag,
        "max_retries_exp_mechanism": _integer(1, 1000),
        "mult_weights_iterations": _integer(1, 1000),
    },
    "aim": {
        "max_model_size": _number(1000.0),
        "degree": _integer(1, 5),
        "num_marginals": _integer(1, 10_000),
        "max_cells": _integer(1, 10_000_000),
        "rounds": _integer(1, 10_000),
    },
    "mst": {},
    # pac=1 only: packing rows would make one row's presence shift every pack after it (no per-row clipping).
    "dpctgan": {
        **_GAN_COMMON,
        "pac": _one_of(1),
        "sigma": _number(1000.0),
        "max_per_sample_grad_norm": _number(1000.0),
    },
}
QUIET = {"mwem", "aim", "mst", "dpctgan"}  # constructors taking verbose=
NO_DELTA = {"mwem"}  # pure ε-DP: no delta argument, charged (ε, 0)


# --- columns: how each metadata column is encoded ---------------------------------------------------


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is encoded, from its metadata: its kind and its public values."""

    name: str
    kind: str  # "categorical", "numeric", "datetime", "privacy_id" or "free" (needs a custom constraint)
    categories: tuple[Any, ...] = ()
    lower: Any = None
    upper: Any = None
    integer: bool = False
    date_only: bool = False

    @property
    def public_values(self) -> list[Any]:
        """Values a transformer may be fitted on: the categories, or the bounds."""
        if self.kind == "categorical":
            return list(self.categories)
        if self.kind in {"numeric", "datetime"}:
            return [self.lower, self.upper]
        return []

    @property
    def probe_values(self) -> list[Any]:
        """Values whose encoding shows the column's transformer total on every value the column can hold.

        A finite domain is enumerated. On a bounded interval every allowed transformer is monotone,
        so its image is the interval between the images of the bounds: the bounds and the middle.
        """
        if self.kind == "numeric":
            return [self.lower, (self.lower + self.upper) / 2, self.upper]
        if self.kind == "datetime":
            return [self.lower, self.lower + (self.upper - self.lower) / 2, self.upper]
        return self.public_values


def plan_column(column: dict[str, Any]) -> ColumnPlan:
    """The column's encoding: privacy ids anonymised, keyValues categorical, bounded numbers and dates."""
    name, group = column["name"], XSD_GROUP_MAP[column["datatype"]]
    if column.get("privacyId"):
        return ColumnPlan(name, "privacy_id")
    if column.get("keyValues"):
        return ColumnPlan(name, "categorical", categories=tuple(column["keyValues"]))
    if group == DataTypesGroups.BOOLEAN:
        return ColumnPlan(name, "categorical", categories=(False, True))
    if group in {DataTypesGroups.INTEGER, DataTypesGroups.FLOAT}:
        integer = group == DataTypesGroups.INTEGER
        return ColumnPlan(name, "numeric", lower=column["minimum"], upper=column["maximum"], integer=integer)
    if group == DataTypesGroups.DATETIME:
        lower, upper = pd.Timestamp(column["minimum"]), pd.Timestamp(column["maximum"])
        return ColumnPlan(name, "datetime", lower=lower, upper=upper, date_only=column["datatype"] == "date")
    return ColumnPlan(name, "free")


class SmartnoiseSynthAdapter(DPAdapter):
    """One smartnoise-synth request: one synthesizer, costed from the request and the metadata."""

    library: ClassVar[str] = LIBRARY
    cost_request = CostRequest
    query_request = QueryRequest
    library_modules = ("snsynth", "snsynth.transform", "snsynth.mwem", "snsynth.mst.mst", "snsynth.aim",
                       "snsynth.pytorch.nn.dpctgan", "opacus")  # fmt: skip
    in_previous_queries: ClassVar[bool] = False  # lomas-client 0.5.1 cannot decode these records

    def __init__(self, *, body: dict[str, Any], connector: DataConnector, metadata: dict[str, Any]) -> None:
        super().__init__(body=body, connector=connector, metadata=metadata)
        self.synth_name: str = body["synth_name"]
        self.epsilon = float(body["epsilon"])
        self.delta: float | None = None if body.get("delta") is None else float(body["delta"])
        self.select_cols: list[str] = list(body.get("select_cols") or [])
        self.synth_params: dict[str, Any] = dict(body.get("synth_params") or {})
        self.nullable: bool = bool(body.get("nullable", False))
        self.constraints: str = body.get("constraints") or ""
        self.return_model: bool = bool(body.get("return_model", False))
        self.condition: str = body.get("condition") or ""
        self.nb_samples: int = int(body.get("nb_samples", 200))

    @classmethod
    def warm_up(cls) -> None:
        """XLA_FAST_COMPILE added to XLA_FLAGS (an operator's own setting of a flag wins), before JAX
        first compiles, then the library imported."""
        flags = os.environ.get("XLA_FLAGS", "").split()
        named = {flag.split("=")[0] for flag in flags}
        flags += [f"{name}={value}" for name, value in XLA_FAST_COMPILE.items() if name not in named]
        os.environ["XLA_FLAGS"] = " ".join(flags)
        super().warm_up()

    @property
    def is_marginal(self) -> bool:
        """Marginal synthesizers are fitted on binned data, GANs on scaled data."""
        return self.synth_name in MARGINAL_SYNTHS

    def validate(self) -> None:
        """Everything that depends only on the request and the metadata (no data is read)."""
        if self.synth_name == "pategan" and (self._public_rows or 0) < PATEGAN_MIN_ROWS:
            raise ExternalLibraryError(
                f"pategan not reliable with this dataset (fewer than {PATEGAN_MIN_ROWS} rows).", library=LIBRARY
            )
        if self.synth_name in REFUSED:
            raise InvalidQuery(REFUSED[self.synth_name])
        if self.synth_name == "mst" and self.return_model:
            raise InvalidQuery(
                "mst synthesizer cannot be returned, only samples. Please, change model or set `return_model=False`."
            )
        if self.delta == 0 and self.synth_name not in NO_DELTA:
            raise InvalidQuery(f"{self.synth_name} needs delta > 0 (or null for its default).")
        if self.delta and self.synth_name in NO_DELTA:  # lomas: the synthesizer refuses the argument
            raise ExternalLibraryError(
                f"{self.synth_name} is pure ε-DP and takes no delta: set delta to null or 0.", library=LIBRARY
            )
        if self.synth_name in {"mwem", "mst", "dpctgan"} and not self._public_rows:
            raise InvalidQuery(f"{self.synth_name} needs the dataset's row count, which its metadata does not publish.")
        _ = self._synth_kwargs
        _ = self._table_transformer
        if self.synth_name == "dpctgan":
            _ = self._training_plan
        marginals = len(_output_cardinalities(self._table_transformer))
        if self.synth_name == "aim" and self._synth_kwargs.get("rounds", marginals) < marginals:
            # AIM spends 0.9 / rounds of its budget on each 1-way marginal first: fewer rounds overspend (NaN).
            raise InvalidQuery(f"synth_params['rounds'] must be at least {marginals} (the number of encoded columns).")

    def cost(self) -> Cost:
        """The synthesizer's spend, from the request and the metadata: no fit, no row.

        snsynth's accounting is for one row; a person with `maxContributions` rows costs more.
        """
        self.validate()
        if self.synth_name == "mwem":
            per_row = Cost(epsilon=self.epsilon, delta=0.0)
        elif self.synth_name == "dpctgan":
            per_row = Cost(epsilon=self._training_plan.epsilon, delta=self._training_plan.delta)
        else:
            per_row = Cost(epsilon=self.epsilon, delta=self._delta)
        return per_row.for_group(self.metadata)

    def rehearse(self) -> None:
        """The real run's path on the twin with the least work: the same transformers, encoding,
        synthesizer and output, with one MWEM iteration and one dpctgan step. AIM and MST run their
        fit up to their first measurement (their estimation alone takes longer than a real MWEM fit),
        and the condition is evaluated on the twin's rows instead of on samples."""
        self.validate()
        model = self._fit(rehearsal=True)
        if self.synth_name in ESTIMATED_SYNTHS:
            self._check_condition()
            if self.return_model:
                pickle.dumps(_without_training_data(model))
            return
        self._release(model, nb_samples=min(self.nb_samples, REHEARSAL_SAMPLES))

    def _check_condition(self) -> None:
        """The condition parsed and evaluated as sample_conditional does, on this adapter's rows."""
        if not self.condition:
            return
        from snsql.sql.parse import QueryParser
        from snsynth import Synthesizer

        try:
            query = f"SELECT * FROM DUMMY WHERE {self.condition}"  # noqa: S608 (parsed, never executed)
            condition = QueryParser().query(query).where.condition
            Synthesizer._evaluate_condition(self._training_frame(), condition, [], None)
        except Exception as exc:
            raise InvalidQuery(f"Error sampling: Could not evaluate `condition` {self.condition}: {exc}") from exc

    def run(self) -> dict[str, Any]:
        """Samples of the fitted synthesizer, or the synthesizer itself (base64 pickle)."""
        self.validate()
        return self._release(self._fit(), nb_samples=self.nb_samples)

    def _release(self, model: Any, *, nb_samples: int) -> dict[str, Any]:
        if self.return_model:
            return {"type": LIBRARY, "model": base64.b64encode(pickle.dumps(_without_training_data(model))).decode()}
        with self.library_errors("Error sampling: {reason}"):
            try:
                if self.condition:
                    samples = model.sample_conditional(nb_samples, self.condition)
                else:
                    samples = model.sample(nb_samples)
            except ValueError as exc:  # the synthesizer has been released: its messages are public
                raise InvalidQuery(f"Error sampling: {exc}") from exc
        return {"type": SAMPLES_TYPE, "df_samples": dataframe_to_tight_json(self._typed_samples(samples))}

    # --- fitting --------------------------------------------------------------------------------

    def _fit(self, *, rehearsal: bool = False) -> Any:
        """A synthesizer fitted on this adapter's rows (a rehearsal: with the least work)."""
        from snsynth import Synthesizer

        _remember_rho()
        kwargs = {**self._synth_kwargs, **(REHEARSAL_PARAMS.get(self.synth_name, {}) if rehearsal else {})}
        with self.library_errors("Error creating model: {reason}"):  # depends only on the request
            model = Synthesizer.create(synth=self.synth_name, epsilon=self.epsilon, **kwargs)
        with self.library_errors("Error fitting model: {reason}"):
            if self.synth_name == "dpctgan":
                self._fit_dpctgan(model, rehearsal=rehearsal)
            elif self.synth_name == "mwem":
                with _mwem_public_domain(model, _output_cardinalities(self._table_transformer), self._public_rows):
                    self._fit_library(model)
            elif self.synth_name == "mst":
                with _mst_public_total(model, self._public_rows, estimate=not rehearsal):
                    self._fit_library(model)
            elif rehearsal:  # aim: up to its workload
                with _replaced(model, "AIM", lambda data, workload: None):
                    self._fit_library(model)
            else:
                self._fit_library(model)
        return model

    def _fit_library(self, model: Any) -> None:
        model.fit(self._training_frame(), transformer=self._table_transformer, preprocessor_eps=0.0,
                  nullable=self.nullable)  # fmt: skip

    def _fit_dpctgan(self, model: Any, *, rehearsal: bool) -> None:
        from queries.libraries.smartnoise_synth.dpctgan import train

        plan = self._training_plan
        if rehearsal:
            plan = dataclasses.replace(plan, epochs=1, steps_per_epoch=1)
        model._transformer = self._table_transformer
        train(model, self._encoded_training_rows(), plan)

    def _encoded_training_rows(self) -> np.ndarray:
        """The training rows through the table transformer, as the GANs read them (None as 0)."""
        encoded = self._table_transformer.transform(self._training_frame())
        width = self._table_transformer.output_width
        return np.array([[0.0 if value is None else float(value) for value in row] for row in encoded]).reshape(
            -1, width
        )

    @cached_property
    def _training_plan(self) -> TrainingPlan:
        """dpctgan's steps, sampling rate and spend: from the request and the published row count."""
        from snsynth.pytorch.nn.dpctgan import DPCTGAN

        from queries.libraries.smartnoise_synth.dpctgan import plan_training

        defaults = inspect.signature(DPCTGAN.__init__).parameters
        setting = {name: self._synth_kwargs.get(name, defaults[name].default)
                   for name in ("batch_size", "epochs", "sigma")}  # fmt: skip
        return plan_training(
            batch_size=setting["batch_size"], public_rows=self._public_rows, epochs=setting["epochs"],
            sigma=setting["sigma"], delta=self._delta, epsilon=self.epsilon,
        )  # fmt: skip

    @cached_property
    def _public_rows(self) -> int | None:
        """The dataset's row count as the metadata publishes it."""
        return self.metadata.get("publicLength") or self.metadata.get("maxLength")

    @cached_property
    def _synth_kwargs(self) -> dict[str, Any]:
        """Constructor arguments: the checked synth_params, delta, and the server's fixed choices."""
        allowed = SYNTH_PARAMS[self.synth_name]
        unknown = sorted(set(self.synth_params) - set(allowed))
        if unknown:
            raise InvalidQuery(
                f"synth_params {unknown} not allowed for {self.synth_name}: expected some of {sorted(allowed)}."
            )
        kwargs = {name: allowed[name](name, value) for name, value in self.synth_params.items()}
        if self.synth_name in GAN_EPOCH_DEFAULTS:
            cap = settings.LOMAS_SYNTH_MAX_EPOCHS
            kwargs.setdefault("epochs", min(GAN_EPOCH_DEFAULTS[self.synth_name], cap))
            if kwargs["epochs"] > cap:
                raise InvalidQuery(f"synth_params['epochs'] must be at most {cap} on this server.")
        if self.synth_name == "mwem":  # the library would derive both from the private row count
            kwargs.setdefault("iterations", int(np.ceil(np.log10(self._public_rows))) * 10)
            kwargs.setdefault("marginal_width", 3 if self._public_rows > MWEM_WIDE_ROWS else 2)
        if self.synth_name not in NO_DELTA:
            kwargs["delta"] = self._delta
        if self.synth_name in QUIET:
            kwargs["verbose"] = False
        if self.synth_name == "dpctgan":
            kwargs["disabled_dp"] = False
            kwargs["cuda"] = False
        return kwargs

    @property
    def _delta(self) -> float:
        """The request's delta; without one, aim's and mst's default, or 1/(n·√n) for a GAN with n
        the published row count (the GANs would derive it from the private row count and report it)."""
        if self.delta is not None:
            return self.delta
        if self.synth_name in MARGINAL_SYNTHS:
            return MARGINAL_DEFAULT_DELTA
        if not self._public_rows:
            raise InvalidQuery(f"{self.synth_name} needs a delta: this dataset publishes no row count.")
        return 1.0 / (self._public_rows * np.sqrt(self._public_rows))

    @cached_property
    def _plans(self) -> list[ColumnPlan]:
        """The selected columns, in select_cols order ([] selects all, in metadata order)."""
        columns = {column["name"]: column for column in self.metadata["tableSchema"]["columns"]}
        unknown = [name for name in self.select_cols if name not in columns]
        if unknown:
            raise InvalidQuery(f"Error while selecting provided select_cols: columns {unknown} not in the dataset.")
        return [plan_column(columns[name]) for name in dict.fromkeys(self.select_cols or columns)]

    @cached_property
    def _custom_transformers(self) -> dict[str, ColumnTransformer]:
        return parse_constraints(self.constraints, columns=[plan.name for plan in self._plans])

    @cached_property
    def _table_transformer(self) -> TableTransformer:
        """One transformer per selected column, fitted on the metadata's public values only, and
        checked total on every value its column can hold."""
        from snsynth.transform.table import TableTransformer

        transformers = []
        for plan in self._plans:
            custom = self._custom_transformers.get(plan.name)
            if custom is not None:
                _check_allowed_on(plan, custom)
            transformer = custom or self._default_transformer(plan)
            values = plan.public_values
            if self.nullable or not values:  # the missing-value label is part of the encoding
                values = [*values, None]
            try:
                transformer.fit(values)
            except Exception as exc:
                raise InvalidQuery(
                    f"Column '{plan.name}': its transformer cannot be set up from the metadata and constraints "
                    f"({type(exc).__name__}: {exc})."
                ) from exc
            if not transformer.fit_complete:
                raise InvalidQuery(f"Column '{plan.name}': its transformer needs bounds that the metadata lacks.")
            if custom is not None:
                self._check_total(plan, transformer)
            transformers.append(transformer)
        return TableTransformer(transformers)

    def _check_total(self, plan: ColumnPlan, transformer: ColumnTransformer) -> None:
        """Refuse a custom transformer that fails, or gives a non-finite number, on a value the column
        may hold (e.g. a label encoder after a clamp: it would fail exactly on the values between the
        clamp bounds, a range oracle). The values go through the same normalisation as private rows."""
        probes = plan.probe_values + ([None] if self.nullable else [])
        if not probes:
            return
        values = _normalised(plan, pd.Series(probes, dtype=object))
        try:
            encoded = transformer.transform(list(values))
        except Exception as exc:
            raise InvalidQuery(
                f"constraints['{plan.name}']: the transformer fails on values the column may hold "
                f"({type(exc).__name__}: {exc}); it must accept every value within the metadata's domain."
            ) from exc
        flat = [part for value in encoded for part in (value if isinstance(value, tuple) else (value,))]
        if any(isinstance(part, float | np.floating) and not np.isfinite(part) for part in flat):
            raise InvalidQuery(
                f"constraints['{plan.name}']: the transformer gives non-finite numbers on values the column may hold "
                "(e.g. a LogTransformer on values at or below 0)."
            )

    def _default_transformer(self, plan: ColumnPlan) -> ColumnTransformer:
        from snsynth.transform import (
            AnonymizationTransformer,
            BinTransformer,
            ChainTransformer,
            LabelTransformer,
            MinMaxTransformer,
            OneHotEncoder,
        )
        from snsynth.transform.datetime import DateTimeTransformer

        nullable = self.nullable
        if plan.kind == "privacy_id":
            return AnonymizationTransformer(PRIVACY_ID_FAKE)
        if plan.kind == "categorical":
            label = LabelTransformer(nullable=nullable)
            return label if self.is_marginal else ChainTransformer([label, OneHotEncoder()])

        def scale(lower: float, upper: float) -> ColumnTransformer:
            if self.is_marginal:
                return BinTransformer(lower=lower, upper=upper, bins=BINS, nullable=nullable)
            return MinMaxTransformer(lower=lower, upper=upper, nullable=nullable)

        if plan.kind == "numeric":
            return scale(float(plan.lower), float(plan.upper))
        if plan.kind == "datetime":
            # numpy float64 bounds make MinMaxTransformer give back float64 (a float), not the GAN's
            # float32, which DateTimeTransformer's inverse cannot turn into a timedelta.
            days = np.float64((plan.upper - plan.lower).total_seconds() / 86400)
            return ChainTransformer([DateTimeTransformer(epoch=plan.lower.to_pydatetime()), scale(np.float64(0), days)])
        raise InvalidQuery(
            f"Column '{plan.name}' has neither categories (keyValues) nor bounds in the metadata: "
            'leave it out of select_cols or give it a constraint (e.g. "drop").'
        )

    def _training_frame(self) -> pd.DataFrame:
        """The selected private columns as the transformers expect them.

        Values outside the metadata's categories, and values that are not numbers or dates where
        the metadata says so, count as missing; numbers and dates are clipped to their bounds;
        without `nullable`, rows missing a value are left out. No value can make this fail.
        """
        frame = self.connector.get_pandas()
        columns = {plan.name: _normalised(plan, frame[plan.name].reset_index(drop=True)) for plan in self._plans}
        data = pd.DataFrame(columns)
        if not self.nullable:
            checked = [plan.name for plan in self._plans if plan.kind != "privacy_id"]
            data = data[data[checked].notna().all(axis=1)].reset_index(drop=True)
        return data

    def _typed_samples(self, samples: Any) -> pd.DataFrame:
        """Samples in the metadata's types and bounds, missing values as "" (spec §3.2)."""
        frame = pd.DataFrame(samples)
        typed: dict[str, pd.Series] = {}
        plans = {plan.name: plan for plan in self._plans}
        for name in frame.columns:
            plan, series = plans[name], frame[name]
            if plan.name not in self._custom_transformers and plan.kind == "numeric":
                numbers = pd.to_numeric(series, errors="coerce").clip(plan.lower, plan.upper)
                series = numbers.round().astype("Int64") if plan.integer else numbers
            elif plan.name not in self._custom_transformers and plan.kind == "datetime":
                moments = pd.to_datetime(series).clip(plan.lower, plan.upper)
                series = moments.dt.normalize() if plan.date_only else moments
            typed[name] = series.astype(object).where(series.notna(), "")
        return pd.DataFrame(typed)


def _normalised(plan: ColumnPlan, series: pd.Series) -> pd.Series:
    """One column's values as its transformer receives them, None for missing: total on any input."""
    if plan.kind in {"privacy_id", "free"}:
        values = series.astype(object)
    elif plan.kind == "categorical":
        values = series.astype(object)
        values = values.where(values.isin(list(plan.categories)), None)
    elif plan.kind == "numeric":
        values = pd.to_numeric(series, errors="coerce").astype("float64").clip(plan.lower, plan.upper)
        values = values.astype(object)
    else:
        moments = pd.to_datetime(series, errors="coerce", utc=True).dt.tz_localize(None)  # one kind of moment
        values = moments.clip(plan.lower, plan.upper).astype(object)
    return values.where(series.notna().to_numpy() & values.notna(), None)


# Transformers a custom constraint may use on a column, by column kind: on a bounded interval only
# monotone ones that accept any number (no label encoders: they know only the values they were
# fitted on, here the bounds); free text and privacy ids only dropped or replaced by fakes.
MONOTONE_TRANSFORMERS = frozenset({"ClampTransformer", "MinMaxTransformer", "BinTransformer", "LogTransformer",
                                   "DateTimeTransformer"})  # fmt: skip
VALUE_FREE_TRANSFORMERS = frozenset({"DropTransformer", "AnonymizationTransformer"})


def _check_allowed_on(plan: ColumnPlan, transformer: ColumnTransformer) -> None:
    """Refuse a custom transformer whose kind cannot be total on the column's values (see above)."""
    names = {type(part).__name__ for part in getattr(transformer, "transformers", [transformer])}
    if plan.kind == "categorical":
        return
    allowed = VALUE_FREE_TRANSFORMERS | (MONOTONE_TRANSFORMERS if plan.kind in {"numeric", "datetime"} else set())
    if names - allowed:
        raise InvalidQuery(
            f"constraints['{plan.name}']: {sorted(names - allowed)} cannot encode a {plan.kind} column "
            f"(it would fail on values it was not fitted on); use {sorted(allowed)}."
        )


def _output_cardinalities(table: TableTransformer) -> list[int | None]:
    """Each encoded column's number of values (None if continuous). TableTransformer.cardinality lists
    every transformer of a chain, not only the last one, whose output the synthesizer sees."""
    from snsynth.transform import AnonymizationTransformer, ChainTransformer, DropTransformer

    def last(transformer: ColumnTransformer) -> ColumnTransformer:
        return last(transformer.transformers[-1]) if isinstance(transformer, ChainTransformer) else transformer

    value_free = (DropTransformer, AnonymizationTransformer)
    return [card for t in table.transformers if not isinstance(t, value_free) for card in last(t).cardinality]


@contextmanager
def _mwem_public_domain(model: Any, cardinalities: list[int | None], rows: int) -> Iterator[None]:
    """MWEM with its histogram domain from the transformer's cardinalities and its synthetic total from
    the published row count. smartnoise-synth takes each column's range (`mins_maxes`, the histogram
    shape) from the private minimum and maximum, and the synthetic total from the private row count.
    The full domain has more cells than the occupied range: the updates are done a run of queries on
    disjoint cells at a time to pay for it."""
    from snsynth.mwem import Histogram

    def histograms(data: np.ndarray, splits: list[Any]) -> list[Any]:
        if any(cardinality is None for cardinality in cardinalities) or len(cardinalities) != data.shape[1]:
            raise ValueError("MWEM needs every column binned or categorical.")
        built = []
        for split in splits:
            sizes = [int(cardinalities[column]) for column in split]
            for column, size in zip(split, sizes, strict=True):
                model.mins_maxes[str(column)] = (0, size - 1)
                model.scale[str(column)] = 1
            counts, edges = np.histogramdd(
                data[:, split].astype(float).reshape(len(data), len(split)), bins=sizes,
                range=[(-0.5, size - 0.5) for size in sizes],
            )  # fmt: skip
            built.append(Histogram(counts, sizes, edges, split))
        return built

    def uniform(histogram: np.ndarray, dimensions: list[int]) -> np.ndarray:
        return np.full(np.shape(histogram), rows / np.prod(dimensions), dtype=float)

    runs_of: dict[int, tuple[Any, list[tuple[np.ndarray, int, int]]]] = {}  # id(query set): (it, its runs)

    def disjoint_runs(query_set: Any, shape: tuple[int, ...]) -> list[tuple[np.ndarray, int, int]]:
        """The query set cut into consecutive runs of queries on disjoint cells (a cuboid is one run):
        each run as (each cell's position in the run, the run's count for cells outside it, flat in
        the histogram's order; the run's first query; its count)."""
        if id(query_set) not in runs_of:
            runs: list[tuple[np.ndarray, int, int]] = []
            labels, start = np.full(shape[::-1], -1), 0  # indexed as the library indexes: on the transpose

            def close(end: int) -> None:
                flat = np.ascontiguousarray(labels.T).reshape(-1)
                runs.append((np.where(flat < 0, end - start, flat), start, end - start))

            for position, query in enumerate(query_set.queries):
                if np.any(labels[tuple(query.query)] >= 0):
                    close(position)
                    labels[...], start = -1, position
                labels[tuple(query.query)] = position - start
            close(len(query_set.queries))
            runs_of[id(query_set)] = (query_set, runs)  # the set is held: its id stays its own
        return runs_of[id(query_set)][1]

    def multiplicative_weights(
        synthetic: np.ndarray, queries: list[Any], measured: dict[int, list[float]], _: np.ndarray, rounds: int
    ) -> np.ndarray:
        """The library's update (each measured query scales its cells by exp(error / 2n), then the
        histogram is scaled back to n), a run of queries on disjoint cells at a time: a query's cells
        are untouched by the run's earlier queries, so its error needs only their sum at the run's
        start and the scale since, and the cells are scaled once at the run's end."""
        synthetic = np.array(synthetic, dtype=float)
        total, flat = float(synthetic.sum()), synthetic.reshape(-1)
        for _ in range(rounds):
            for index, values in measured.items():
                for labels, start, count in disjoint_runs(queries[index], synthetic.shape):
                    sums = np.bincount(labels, weights=flat, minlength=count + 1)[:count].tolist()
                    held, factors = float(flat.sum()), np.ones(count + 1)
                    for position, (value, cells) in enumerate(zip(values[start : start + count], sums, strict=True)):
                        try:
                            factor = math.exp((value - cells * total / held) / (2.0 * total))
                        except OverflowError:
                            factor = math.inf
                        if factor != 0.0:  # an underflow leaves the cells as they are, as the library does
                            held += (factor - 1.0) * cells
                            factors[position] = factor
                    flat *= factors[labels]
                    flat *= total / held
        return synthetic

    model._histogram_from_data_attributes, model._initialize_a = histograms, uniform
    model._multiplicative_weights = multiplicative_weights
    try:
        yield
    finally:  # the model is pickled: only the library's own methods may stay
        del model._histogram_from_data_attributes, model._initialize_a, model._multiplicative_weights


# --- custom constraints: JSON only ------------------------------------------------------------------


def parse_constraints(text: str, *, columns: list[str]) -> dict[str, ColumnTransformer]:
    """Per-column transformers from the request's `constraints` JSON (never eval or pickle).

    Accepts smartnoise-synth-logger's envelope `{"module": "smartnoise-synth", "version": ...,
    "constraints": {...}}` or the bare `{column: spec}` map. A spec is "drop", or
    `{"type": "<Transformer>", "params": {...}}` (a ChainTransformer's params are a list of specs);
    types may carry the logger's `_ssynth_transformer:` prefixes. Constraints on columns that
    are not selected are ignored.
    """
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidQuery(f"constraints must be JSON: {exc}") from exc
    if isinstance(document, dict) and "constraints" in document:
        if document.get("module", CONSTRAINTS_MODULE) != CONSTRAINTS_MODULE:
            raise InvalidQuery(f"constraints 'module' must be '{CONSTRAINTS_MODULE}'.")
        document = document["constraints"]
    if not isinstance(document, dict):
        raise InvalidQuery("constraints must be a JSON object mapping column names to transformers.")
    return {name: _transformer_from_spec(name, spec) for name, spec in document.items() if name in columns}


def _transformer_from_spec(column: str, spec: Any) -> ColumnTransformer:
    from snsynth.transform import (
        AnonymizationTransformer,
        BinTransformer,
        ChainTransformer,
        ClampTransformer,
        DropTransformer,
        LabelTransformer,
        LogTransformer,
        MinMaxTransformer,
        OneHotEncoder,
    )
    from snsynth.transform.datetime import DateTimeTransformer

    if spec == "drop":
        return DropTransformer()
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise InvalidQuery(f'constraints[\'{column}\'] must be "drop" or {{"type": ..., "params": ...}}.')
    name = spec["type"]
    for prefix in TRANSFORMER_PREFIXES:
        name = name.removeprefix(prefix)
    params = spec.get("params", {})
    if name == "ChainTransformer":
        if not isinstance(params, list) or not params:
            raise InvalidQuery(f"constraints['{column}']: a ChainTransformer's params are a list of transformers.")
        return ChainTransformer([_transformer_from_spec(column, inner) for inner in params])
    # Transformers and the keyword arguments a request may give them (no epsilon: bounds are never learnt).
    allowed: dict[str, tuple[type, set[str]]] = {
        "LabelTransformer": (LabelTransformer, {"nullable"}),
        "OneHotEncoder": (OneHotEncoder, set()),
        "MinMaxTransformer": (MinMaxTransformer, {"lower", "upper", "negative", "nullable"}),
        "BinTransformer": (BinTransformer, {"lower", "upper", "bins", "nullable"}),
        "ClampTransformer": (ClampTransformer, {"lower", "upper"}),
        "LogTransformer": (LogTransformer, set()),
        "DateTimeTransformer": (DateTimeTransformer, {"epoch"}),
        "AnonymizationTransformer": (AnonymizationTransformer, {"fake"}),
        "DropTransformer": (DropTransformer, set()),
    }
    if name not in allowed:
        raise InvalidQuery(f"constraints['{column}']: unknown transformer {name!r}; expected one of {sorted(allowed)}.")
    cls, keywords = allowed[name]
    if not isinstance(params, dict) or set(params) - keywords:
        raise InvalidQuery(f"constraints['{column}']: {name} takes only {sorted(keywords)}.")
    if not all(value is None or isinstance(value, str | int | float | bool) for value in params.values()):
        raise InvalidQuery(f"constraints['{column}']: {name} parameters must be JSON scalars.")
    if name == "AnonymizationTransformer" and params.get("fake") not in FAKES:
        raise InvalidQuery(f"constraints['{column}']: fake must be one of {sorted(FAKES)}.")
    try:
        return cls(**params)
    except Exception as exc:  # depends only on the request
        raise InvalidQuery(f"constraints['{column}']: {type(exc).__name__}: {exc}") from exc


@cache
def _remember_rho() -> None:
    """AIM's and MST's conversion of (epsilon, delta) to a zCDP rho, worked out once per request.

    It is a binary search of OpenDP measurements (a few hundred ms), run by the twin's rehearsal and
    again by the real fit; it is a function of the request's epsilon and delta alone (public inputs),
    so the real fit looks it up (`remembered`: never across requests).
    """
    from snsynth import utils
    from snsynth.aim import aim
    from snsynth.mst import mst

    search = utils.cdp_rho

    def cdp_rho(epsilon: float, delta: float, max_contrib: int = 1) -> float:
        key = ("snsynth-cdp-rho", epsilon, delta, max_contrib)
        return remembered(key, lambda: search(epsilon, delta, max_contrib))

    aim.cdp_rho = mst.cdp_rho = cdp_rho


@contextmanager
def _mst_public_total(model: Any, rows: int, *, estimate: bool) -> Iterator[None]:
    """MST's steps (measure the 1-way marginals, compress, select a tree, measure it, estimate) with the
    published row count as the known total: smartnoise-synth gives its estimation the private row count.
    Without `estimate` (a rehearsal), the fit stops where the measurements would start."""
    from mbi import estimation, marginal_oracles
    from snsynth.mst.mst import cdp_rho

    def mst(data: Any, epsilon: float, delta: float) -> None:
        if not estimate:
            return
        total = float(rows)
        rho = cdp_rho(epsilon, delta)
        sigma = np.sqrt(3 / (2 * rho))
        oneway = model.measure(data, [(column,) for column in data.domain], sigma)
        data, oneway, model.undo_compress_fn = model.compress_domain(data, oneway)
        tree = model.measure(data, model.select(data, rho / 3.0, oneway, total), sigma)
        model.synthesizer = estimation.mirror_descent(
            data.domain, oneway + tree, known_total=total, iters=5000,
            marginal_oracle=marginal_oracles.message_passing_stable,
        )  # fmt: skip

    with _replaced(model, "MST", mst):
        yield


@contextmanager
def _replaced(model: Any, name: str, method: Callable[..., Any]) -> Iterator[None]:
    """The model with one method replaced on the instance while fitting (then the library's again: the
    model may be pickled, and lomas-client unpickles it with the library alone)."""
    setattr(model, name, method)
    try:
        yield
    finally:
        delattr(model, name)


def _without_training_data(model: Any) -> Any:
    """The fitted synthesizer as it is sent out: nothing in it computed exactly on the rows.

    MWEM keeps the encoded rows, their exact histograms and the private index; AIM the private row
    count. What stays is DP or public: MWEM's synthetic histograms (their domain and total from the
    metadata, `_mwem_public_domain`), AIM's graphical model fitted on noisy marginals, dpctgan's
    generator (its sampler is empty, its losses unkept: `dpctgan.py`), and the table
    transformer, fitted on the metadata.
    """
    if hasattr(model, "histograms"):
        model.data, model.histograms = None, []
        model.synthetic_histograms = [(fake, None, split) for fake, _, split in model.synthetic_histograms]
    for name in ("pd_index", "num_rows"):
        if hasattr(model, name):
            setattr(model, name, None)
    return model
