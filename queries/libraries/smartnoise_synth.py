"""Smartnoise-Synth (spec §3.2): differentially private synthetic data from one fitted synthesizer.

The table transformer is built and fitted from the csvw-eo metadata alone (categories,
bounds), never from the private rows, so the synthesizer's own privacy accounting is
the whole cost. One adapter instance fits once: cost() fits and reads the synthesizer's
spend, run() samples that fit or returns it pickled (server → client only).
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from csvw_eo.datatypes import XSD_GROUP_MAP, DataTypesGroups
from django.conf import settings
from rest_framework import serializers

from datasets.connectors.base import DataConnector
from datasets.connectors.dummy import DummyConnector
from datasets.frames import dataframe_to_tight_json
from lomas.errors import ExternalLibraryError, InvalidQuery
from lomas.requests import DatasetRequestSerializer, PositiveFloatField
from queries.libraries.base import Cost, DPAdapter

if TYPE_CHECKING:  # snsynth and torch are imported where they are used: web processes never load them
    from snsynth.transform.base import ColumnTransformer
    from snsynth.transform.table import TableTransformer

LIBRARY = "smartnoise_synth"
SAMPLES_TYPE = "sn_synth_samples"
MARGINAL_SYNTHS = ("aim", "mwem", "mst")  # fitted on binned ("cube") data
GAN_SYNTHS = ("dpctgan", "patectgan", "pategan", "dpgan")  # fitted on min-max scaled data
SYNTH_NAMES = (*MARGINAL_SYNTHS, "pacsynth", *GAN_SYNTHS)
GAN_EPOCH_DEFAULTS = {"dpctgan": 300, "patectgan": 300, "dpgan": 1000}  # the library's defaults
BINS = 10
MARGINAL_DEFAULT_DELTA = 1e-9  # aim's and mst's own default
PATEGAN_MIN_ROWS = 1000
PRIVACY_ID_FAKE = "uuid4"
# Faker methods a custom AnonymizationTransformer may name.
FAKES = frozenset({"uuid4", "name", "first_name", "last_name", "email", "phone_number", "address", "city", "pyint"})
CONSTRAINTS_MODULE = "smartnoise-synth"  # the envelope smartnoise-synth-logger writes
TRANSFORMER_PREFIXES = ("_ssynth_transformer:", "_ssynth_datetime_transformer:")


class CostRequest(DatasetRequestSerializer):
    """SmartnoiseSynthRequestModel."""

    synth_name = serializers.ChoiceField(choices=SYNTH_NAMES)
    epsilon = PositiveFloatField()
    delta = serializers.FloatField(min_value=0, allow_null=True)
    select_cols = serializers.ListField(child=serializers.CharField())
    synth_params = serializers.DictField()
    nullable = serializers.BooleanField()
    constraints = serializers.CharField(allow_blank=True, trim_whitespace=False)


class QueryRequest(CostRequest):
    """SmartnoiseSynthQueryModel."""

    return_model = serializers.BooleanField()
    condition = serializers.CharField(allow_blank=True, trim_whitespace=False)
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
    "pac": _integer(1, 100),
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
    "dpctgan": {**_GAN_COMMON, "sigma": _number(1000.0), "max_per_sample_grad_norm": _number(1000.0)},
    "patectgan": {
        **_GAN_COMMON,
        "binary": _flag,
        "regularization": _one_of(None, "dragan"),
        "teacher_iters": _integer(1, 1000),
        "student_iters": _integer(1, 1000),
        "sample_per_teacher": _integer(1, 1_000_000),
        "noise_multiplier": _number(1000.0),
        "moments_order": _integer(1, 1000),
    },
    "pategan": {
        "binary": _flag,
        "latent_dim": _integer(1, 4096),
        "batch_size": _integer(1, 100_000),
        "teacher_iters": _integer(1, 1000),
        "student_iters": _integer(1, 1000),
    },
    "dpgan": {
        "binary": _flag,
        "latent_dim": _integer(1, 4096),
        "batch_size": _integer(1, 100_000),
        "epochs": _integer(1),
    },
}
QUIET = {"mwem", "aim", "mst", "dpctgan", "patectgan"}  # constructors taking verbose=
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
    """One smartnoise-synth request: one synthesizer fitted once, costed by its own accounting."""

    library: ClassVar[str] = LIBRARY
    cost_request = CostRequest
    query_request = QueryRequest
    library_modules = ("snsynth", "snsynth.transform", "snsynth.mwem", "snsynth.mst.mst", "snsynth.aim",
                       "snsynth.pytorch.nn.dpctgan", "snsynth.pytorch.nn.patectgan", "snsynth.pytorch.nn.pategan",
                       "snsynth.pytorch.nn.dpgan")  # fmt: skip
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
        self._model: Any = None

    @property
    def is_marginal(self) -> bool:
        """Marginal synthesizers are fitted on binned data, GANs on scaled data."""
        return self.synth_name in MARGINAL_SYNTHS

    def validate(self) -> None:
        """Everything that depends only on the request and the metadata (no data is read)."""
        if self.synth_name == "pacsynth":
            raise InvalidQuery(
                "pacsynth synthesizer not supported due to Rust panic. Please select another Synthesizer."
            )
        if self.synth_name == "mst" and self.return_model:
            raise InvalidQuery(
                "mst synthesizer cannot be returned, only samples. Please, change model or set `return_model=False`."
            )
        if self.delta == 0 and self.synth_name not in NO_DELTA:
            raise InvalidQuery(f"{self.synth_name} needs delta > 0 (or null for its default).")
        if self.synth_name == "pategan" and (self._public_rows or 0) < PATEGAN_MIN_ROWS:
            raise ExternalLibraryError(
                f"pategan not reliable with this dataset (fewer than {PATEGAN_MIN_ROWS} rows).", library=LIBRARY
            )
        _ = self._synth_kwargs
        _ = self._table_transformer

    def cost(self) -> Cost:
        """The synthesizer's spend after the fit (spec §3.2 rules)."""
        model = self._fit()
        if self.synth_name == "mwem":
            return Cost(epsilon=float(model.epsilon), delta=0.0)
        if self.synth_name == "dpctgan":
            if not model.epsilon_list:
                raise ExternalLibraryError("dpctgan reported no privacy spend.", library=LIBRARY)
            return Cost(epsilon=float(model.epsilon_list[-1]), delta=float(model.delta))
        return Cost(epsilon=float(model.epsilon), delta=float(model.delta))

    def run(self) -> dict[str, Any]:
        """Samples of the fitted synthesizer, or the synthesizer itself (base64 pickle)."""
        model = self._fit()
        if self.return_model:
            return {"type": LIBRARY, "model": base64.b64encode(pickle.dumps(_without_training_data(model))).decode()}
        try:
            if self.condition:
                samples = model.sample_conditional(self.nb_samples, self.condition)
            else:
                samples = model.sample(self.nb_samples)
        except ValueError as exc:  # the synthesizer has been released: its messages are public
            raise InvalidQuery(f"Error sampling: {exc}") from exc
        except Exception as exc:
            raise ExternalLibraryError(f"Error sampling: {type(exc).__name__}: {exc}", library=LIBRARY) from exc
        return {"type": SAMPLES_TYPE, "df_samples": dataframe_to_tight_json(self._typed_samples(samples))}

    # --- fitting --------------------------------------------------------------------------------

    def _fit(self) -> Any:
        if self._model is not None:
            return self._model
        from snsynth import Synthesizer

        self.validate()
        try:
            model = Synthesizer.create(synth=self.synth_name, epsilon=self.epsilon, **self._synth_kwargs)
        except Exception as exc:  # depends only on the request
            raise ExternalLibraryError(f"Error creating model: {type(exc).__name__}: {exc}", library=LIBRARY) from exc
        data = self._training_frame()
        try:
            model.fit(data, transformer=self._table_transformer, preprocessor_eps=0.0, nullable=self.nullable)
        except Exception as exc:
            raise ExternalLibraryError(f"Error fitting model: {self._public_reason(exc)}", library=LIBRARY) from exc
        self._model = model
        return model

    def _public_reason(self, exc: Exception) -> str:
        """The library's message on dummy data; on private data only a hint that quotes no value."""
        if isinstance(self.connector, DummyConnector):
            return self.public_reason(exc)
        text = str(exc)
        if "sample_rate" in text:
            return "the batch is larger than the dataset allows: try a smaller batch_size in synth_params."
        if "too small to create a private dataset" in text:
            return "epsilon is too small for this synthesizer: increase epsilon (or sigma)."
        return self.public_reason(exc)

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
        if self.synth_name not in NO_DELTA:
            kwargs["delta"] = self._delta
        if self.synth_name in QUIET:
            kwargs["verbose"] = False
        if self.synth_name == "dpctgan":
            kwargs["disabled_dp"] = False
        if self.synth_name in {"dpctgan", "patectgan"}:
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
        """One transformer per selected column, fitted on the metadata's public values only."""
        from snsynth.transform.table import TableTransformer

        transformers = []
        for plan in self._plans:
            transformer = self._custom_transformers.get(plan.name) or self._default_transformer(plan)
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
            transformers.append(transformer)
        return TableTransformer(transformers)

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

        Values outside the metadata's categories count as missing, numbers and dates are
        clipped to their bounds; without `nullable`, rows missing a value are left out.
        """
        frame = self.connector.get_pandas()
        custom = self._custom_transformers
        columns: dict[str, pd.Series] = {}
        for plan in self._plans:
            series = frame[plan.name].reset_index(drop=True)
            if plan.name in custom or plan.kind in {"privacy_id", "free"}:
                values = series.astype(object)
            elif plan.kind == "categorical":
                values = series.astype(object)
                values = values.where(values.isin(list(plan.categories)), None)
            elif plan.kind == "numeric":
                values = series.astype("float64").clip(plan.lower, plan.upper).astype(object)
            else:
                values = pd.to_datetime(series).clip(plan.lower, plan.upper).astype(object)
            columns[plan.name] = values.where(series.notna().to_numpy() & values.notna(), None)
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


def _without_training_data(model: Any) -> Any:
    """The fitted synthesizer without the private rows some keep after fitting (it is sent out)."""
    if hasattr(model, "histograms"):  # MWEM keeps the data and its exact histograms
        model.data, model.histograms = None, []
        model.synthetic_histograms = [(fake, None, split) for fake, _, split in model.synthetic_histograms]
    for sampler_name in ("_data_sampler", "cond_generator"):  # CTGAN samplers keep the training rows
        sampler = getattr(model, sampler_name, None)
        if sampler is not None:
            sampler._data, sampler._rid_by_cat_cols = sampler._data[:0], []
    for name in ("pd_index", "num_rows"):  # the private row count
        if hasattr(model, name):
            setattr(model, name, None)
    return model
