"""DiffPrivLib (spec §3.4): a scikit-learn pipeline of diffprivlib models, fitted on the dataset.

The pipeline arrives as diffprivlib_logger JSON that the user controls. It is read by a
strict decoder of our own: step types must be allow-listed classes of diffprivlib.models,
the only instance is the accountant (always replaced by the request's one accountant), and
parameters are JSON scalars, lists and tuples. Nothing the user sent is imported by name,
evaluated or unpickled. Pickle only flows out: the fitted pipeline is the result.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import pickle
import re
import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
from rest_framework import serializers

from datasets.connectors.base import DataConnector
from datasets.metadata import column_dtypes
from lomas.errors import ExternalLibraryError, InvalidQuery
from lomas.requests import DatasetRequestSerializer
from queries.libraries.base import Cost, DPAdapter

if TYPE_CHECKING:  # diffprivlib and scikit-learn are imported where used: web processes never load them
    from diffprivlib import BudgetAccountant
    from sklearn.pipeline import Pipeline

LIBRARY = "diffprivlib"
DPL_TYPE = "_dpl_type:"
DPL_INSTANCE = "_dpl_instance:"
ACCOUNTANT = "BudgetAccountant"
# The diffprivlib.models classes a pipeline may use (all of them in diffprivlib 0.6).
ALLOWED_MODELS = frozenset(
    {
        "DecisionTreeClassifier",
        "GaussianNB",
        "KMeans",
        "LinearRegression",
        "LogisticRegression",
        "PCA",
        "RandomForestClassifier",
        "StandardScaler",
    }
)
# Parameters of a first step that the metadata can fill in.
BOUNDS_PARAMETERS = ("bounds", "bounds_X", "bounds_y", "data_norm")
IMPUTER_STRATEGIES = ("drop", "mean", "median", "most_frequent")
FEATURE_DTYPES = frozenset({"Int64", "float64", "boolean"})
NO_TARGETS = ([], [""])  # lomas-client sends [""] for missing columns on cost calls
MAX_SEED = 2**32 - 1  # scikit-learn's random_state range
FIT_FAILED = "Cannot fit pipeline on data because {reason}"
_VERSION = re.compile(r"(\d+)\.(\d+)\.\d+")


class CostRequest(DatasetRequestSerializer):
    """DiffPrivLibRequestModel."""

    diffprivlib_json = serializers.CharField(trim_whitespace=False)
    feature_columns = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False))
    target_columns = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), allow_null=True
    )
    test_size = serializers.FloatField()
    test_train_split_seed = serializers.IntegerField()
    imputer_strategy = serializers.CharField(trim_whitespace=False)

    def validate_test_size(self, value: float) -> float:
        """Strictly between 0 and 1 (pydantic's gt=0, lt=1)."""
        if not 0 < value < 1:
            raise serializers.ValidationError("Ensure this value is greater than 0 and less than 1.")
        return value


class QueryRequest(CostRequest):
    """DiffPrivLibQueryModel."""


@dataclass(frozen=True)
class PipelineStep:
    """One decoded step: its name, an allow-listed diffprivlib.models class name and its parameters.

    `params` holds JSON scalars, lists and tuples only; the accountant is left out (the
    server sets its own).
    """

    name: str
    model: str
    params: dict[str, Any]


@dataclass(frozen=True)
class FittedPipeline:
    """A pipeline fitted on the training split, the accountant it spent from and the test split."""

    pipeline: Pipeline
    accountant: BudgetAccountant
    x_test: pd.DataFrame
    y_test: Any


def decode_pipeline(text: str, *, server_version: str) -> list[PipelineStep]:
    """The steps of a diffprivlib_logger pipeline JSON, or InvalidQuery saying what is refused.

    Accepts the version stamps of the server's diffprivlib series (0.6.x for 0.6.6).
    """
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidQuery(f"Invalid diffprivlib pipeline JSON: {exc}") from None
    if not isinstance(document, dict) or set(document) != {"module", "version", "pipeline"}:
        raise InvalidQuery("The diffprivlib pipeline must be a JSON object with keys module, version and pipeline.")
    if document["module"] != LIBRARY:
        raise InvalidQuery(f"JSON 'module' must be '{LIBRARY}', not {document['module']!r}.")
    _check_version(document["version"], server_version)
    steps = document["pipeline"]
    if not isinstance(steps, list) or not steps:
        raise InvalidQuery("The diffprivlib pipeline must have at least one step.")
    decoded = [_decode_step(step) for step in steps]
    names = [step.name for step in decoded]
    if len(set(names)) != len(names):
        raise InvalidQuery(f"Pipeline step names must be unique: {names}.")
    return decoded


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate keys in an object: {sorted(keys)}")
    return dict(pairs)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _check_version(version: Any, server_version: str) -> None:
    series = server_version.split(".")[:2]
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None or list(match.groups()) != series:
        raise InvalidQuery(
            f"Pipeline serialised with diffprivlib {version!r}: this server runs diffprivlib {server_version} "
            f"and accepts pipelines of diffprivlib {'.'.join(series)}.x."
        )


def _decode_step(step: Any) -> PipelineStep:
    if not isinstance(step, dict) or set(step) != {"type", "name", "params"}:
        raise InvalidQuery("Each pipeline step must be a JSON object with keys type, name and params.")
    name, kind, params = step["name"], step["type"], step["params"]
    if not isinstance(name, str) or not name or "__" in name:
        raise InvalidQuery(f"Invalid pipeline step name {name!r} (a non-empty string without '__').")
    model = kind[len(DPL_TYPE) :] if isinstance(kind, str) and kind.startswith(DPL_TYPE) else None
    if model not in ALLOWED_MODELS:
        raise InvalidQuery(
            f"Pipeline step {name!r}: {kind!r} is not an allowed diffprivlib model "
            f"(allowed: {', '.join(DPL_TYPE + model for model in sorted(ALLOWED_MODELS))})."
        )
    if not isinstance(params, dict):
        raise InvalidQuery(f"Pipeline step {name!r}: params must be a JSON object.")
    decoded: dict[str, Any] = {}
    for key, value in params.items():
        if key == "accountant":
            if value not in (None, DPL_INSTANCE + ACCOUNTANT):
                raise InvalidQuery(
                    f"Pipeline step {name!r}: accountant must be null or '{DPL_INSTANCE}{ACCOUNTANT}' "
                    "(the server uses its own accountant)."
                )
            continue
        decoded[key] = _decode_value(value, where=f"Pipeline step {name!r}, parameter {key!r}")
    return PipelineStep(name=name, model=model, params=decoded)


def _decode_value(value: Any, *, where: str) -> Any:
    """A JSON scalar, a list, or a tuple from its {"_tuple": true, "_items": [...]} hint."""
    if isinstance(value, str):
        if value.startswith((DPL_TYPE, DPL_INSTANCE)):
            raise InvalidQuery(f"{where}: {value!r} is refused (only the accountant may name a diffprivlib object).")
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [_decode_value(item, where=where) for item in value]
    if isinstance(value, dict) and set(value) == {"_tuple", "_items"} and value["_tuple"] is True:
        if not isinstance(value["_items"], list):
            raise InvalidQuery(f"{where}: a tuple's _items must be a list.")
        return tuple(_decode_value(item, where=where) for item in value["_items"])
    raise InvalidQuery(f"{where}: only JSON scalars, lists and tuples are accepted as parameters.")


def build_pipeline(steps: list[PipelineStep], *, accountant: BudgetAccountant) -> Pipeline:
    """An unfitted scikit-learn Pipeline of the steps, every step spending from `accountant`.

    Parameters must be those of the model's constructor; `random_state` must be null (a
    fixed seed would let anyone who knows it reproduce the noise) and `n_jobs` null or 1.
    """
    from diffprivlib import models
    from sklearn.pipeline import Pipeline

    built = []
    for step in steps:
        model = getattr(models, step.model)
        accepted = _constructor_parameters(model)
        unknown = sorted(set(step.params) - accepted)
        if unknown:
            raise InvalidQuery(f"Pipeline step {step.name!r}: {step.model} has no parameters {unknown}.")
        if step.params.get("random_state") is not None:
            raise InvalidQuery(
                f"Pipeline step {step.name!r}: random_state must be null; the server draws the noise from a "
                "secure source (a fixed seed would make the noise reproducible)."
            )
        if step.params.get("n_jobs") not in (None, 1):
            raise InvalidQuery(f"Pipeline step {step.name!r}: n_jobs must be null or 1.")
        params = {**step.params, "accountant": accountant} if "accountant" in accepted else step.params
        built.append((step.name, model(**params)))
    return Pipeline(built)


def _constructor_parameters(model: type) -> set[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name for name, param in inspect.signature(model).parameters.items() if param.kind in kinds}


class DiffPrivLibAdapter(DPAdapter):
    """One diffprivlib request: cost() fits the pipeline and reads its accountant; run() reuses the fit.

    Metadata bounds (`bounds`, `bounds_X`, `bounds_y`, `data_norm`) are given to the first
    step when it accepts them and the user left them null. A PrivacyLeakWarning stops the
    fit. Fit error messages are passed on only if they cannot reflect private rows.
    """

    library: ClassVar[str] = LIBRARY
    cost_request = CostRequest
    query_request = QueryRequest
    library_modules = ("diffprivlib", "diffprivlib.models", "sklearn.pipeline", "sklearn.model_selection")

    def __init__(self, *, body: dict[str, Any], connector: DataConnector, metadata: dict[str, Any]) -> None:
        super().__init__(body=body, connector=connector, metadata=metadata)
        self.feature_columns: list[str] = list(body["feature_columns"])
        targets = body.get("target_columns")
        self.target_columns: list[str] | None = None if targets is None or targets in NO_TARGETS else list(targets)
        self.test_size = float(body["test_size"])
        self.seed = int(body["test_train_split_seed"])
        self.imputer_strategy: str = body["imputer_strategy"]

    def validate(self) -> None:
        """Columns, imputer, split seed and pipeline must be usable on this dataset, else InvalidQuery."""
        self._check_columns()
        if self.imputer_strategy not in IMPUTER_STRATEGIES:
            raise InvalidQuery(f"Imputation strategy {self.imputer_strategy} not supported.")
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidQuery(f"test_train_split_seed must be between 0 and {MAX_SEED}.")
        _ = self._steps

    def cost(self) -> Cost:
        """The (epsilon, delta) the fit spent, as the request's accountant totals it."""
        self.validate()
        epsilon, delta = self._fitted.accountant.total()
        return Cost(epsilon=float(epsilon), delta=float(delta))

    def run(self) -> dict[str, Any]:
        """The fitted pipeline's score on the test split and the pipeline itself, pickled."""
        self.validate()
        fitted = self._fitted
        try:
            score = float(fitted.pipeline.score(fitted.x_test, fitted.y_test))
        except Exception as exc:
            raise ExternalLibraryError(
                f"Cannot score the fitted pipeline on the test set: {type(exc).__name__}.", library=LIBRARY
            ) from exc
        if not math.isfinite(score):
            raise ExternalLibraryError("The fitted pipeline's score on the test set is not a number.", library=LIBRARY)
        model = base64.b64encode(pickle.dumps(fitted.pipeline)).decode("ascii")
        return {"type": LIBRARY, "score": score, "model": model}

    @cached_property
    def _steps(self) -> list[PipelineStep]:
        """The decoded steps, the first one completed with the metadata's bounds it accepts and lacks."""
        import diffprivlib

        steps = decode_pipeline(self.body["diffprivlib_json"], server_version=diffprivlib.__version__)
        first = steps[0]
        accepted = _accepted_parameters(first.model)
        lacking = [name for name in BOUNDS_PARAMETERS if name in accepted and first.params.get(name) is None]
        if lacking:
            steps[0] = replace(first, params={**first.params, **self._metadata_bounds(first, lacking)})
        return steps

    def _check_columns(self) -> None:
        features, targets = self.feature_columns, self.target_columns or []
        if not features or features == [""]:
            raise InvalidQuery("Give at least one feature column.")
        if len(set(features)) != len(features) or len(set(targets)) != len(targets):
            raise InvalidQuery("Feature and target columns must not repeat.")
        overlap = sorted(set(features) & set(targets))
        if overlap:
            raise InvalidQuery(f"Columns {overlap} are both feature and target columns.")
        dtypes = column_dtypes(self.metadata)
        missing = [name for name in [*features, *targets] if name not in dtypes]
        if missing:
            raise InvalidQuery(f"Columns not found in the dataset: {missing}.")
        not_numeric = [name for name in features if dtypes[name] not in FEATURE_DTYPES]
        if not_numeric:
            raise InvalidQuery(f"Feature columns must be numbers or booleans: {not_numeric} are not.")

    def _metadata_bounds(self, step: PipelineStep, names: list[str]) -> dict[str, Any]:
        """The diffprivlib parameters `names` as the metadata gives them for the features and targets.

        Bounds are (list of minimums, list of maximums); a single target's are two numbers;
        data_norm is the largest L2 norm a feature row can have within its bounds.
        """
        lows, highs = (list(side) for side in zip(*map(self._column_bounds, self.feature_columns), strict=True))
        values: dict[str, Any] = {}
        for name in names:
            if name in ("bounds", "bounds_X"):
                values[name] = (lows, highs)
            elif name == "data_norm":
                values[name] = math.sqrt(
                    sum(max(abs(low), abs(high)) ** 2 for low, high in zip(lows, highs, strict=True))
                )
            elif not self.target_columns:
                raise InvalidQuery(f"Pipeline step {step.name!r}: {step.model} needs target columns.")
            else:
                y_lows, y_highs = zip(*map(self._column_bounds, self.target_columns), strict=True)
                single = len(self.target_columns) == 1
                values[name] = (y_lows[0], y_highs[0]) if single else (list(y_lows), list(y_highs))
        return values

    def _column_bounds(self, name: str) -> tuple[float, float]:
        column = next(column for column in self.metadata["tableSchema"]["columns"] if column["name"] == name)
        if column_dtypes(self.metadata)[name] == "boolean":
            return 0.0, 1.0
        if "minimum" not in column or "maximum" not in column:
            raise InvalidQuery(f"Column {name} has no bounds in the metadata.")
        return float(column["minimum"]), float(column["maximum"])

    @cached_property
    def _fitted(self) -> FittedPipeline:
        """Impute, split, build and fit (once per instance), a PrivacyLeakWarning being an error."""
        from diffprivlib import BudgetAccountant
        from diffprivlib.utils import PrivacyLeakWarning

        x_train, x_test, y_train, y_test = self._split()
        accountant = BudgetAccountant()
        pipeline = build_pipeline(self._steps, accountant=accountant)
        with warnings.catch_warnings():
            warnings.simplefilter("error", PrivacyLeakWarning)
            try:
                pipeline.fit(x_train, y_train)
            except PrivacyLeakWarning as warning:
                raise ExternalLibraryError(
                    f"PrivacyLeakWarning: {warning}. Lomas server cannot fit pipeline on data, "
                    "PrivacyLeakWarning is a blocker.",
                    library=LIBRARY,
                ) from warning
            except Exception as exc:
                reason = self.public_reason(exc, probe=DiffPrivLibAdapter.cost, message=FIT_FAILED)
                raise ExternalLibraryError(FIT_FAILED.format(reason=reason), library=LIBRARY) from exc
        return FittedPipeline(pipeline=pipeline, accountant=accountant, x_test=x_test, y_test=y_test)

    def _split(self) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any]:
        """Imputed features (floats) and targets, split with the request's seed and test size."""
        from sklearn.model_selection import train_test_split

        targets = self.target_columns or []
        used = _as_float_numbers(self.connector.get_pandas()[[*self.feature_columns, *targets]])
        data = _impute(used, self.imputer_strategy)
        if data.isna().to_numpy().any():
            raise InvalidQuery(f"The '{self.imputer_strategy}' imputation left missing values (a column has none).")
        features = data[self.feature_columns].astype("float64")
        arrays = [features] if not targets else [features, _target_values(data[targets])]
        try:
            parts = train_test_split(*arrays, test_size=self.test_size, random_state=self.seed)
        except ValueError:
            raise InvalidQuery(
                "Not enough rows to split into train and test sets with this test_size "
                f"after the '{self.imputer_strategy}' imputation."
            ) from None
        if not targets:
            return parts[0], parts[1], None, None
        return parts[0], parts[1], parts[2], parts[3]


def _accepted_parameters(model_name: str) -> set[str]:
    from diffprivlib import models

    return _constructor_parameters(getattr(models, model_name))


def _as_float_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with integer columns as float64 (so that mean and median imputation fit in them)."""
    return frame.astype(
        {name: "float64" for name, dtype in frame.dtypes.items() if pd.api.types.is_integer_dtype(dtype)}
    )


def _impute(frame: pd.DataFrame, strategy: str) -> pd.DataFrame:
    """Missing values dropped (`drop`) or filled: numbers with their mean or median, the rest with the mode."""
    if strategy == "drop":
        return frame.dropna()
    filled = {}
    for name, column in frame.items():
        numeric = pd.api.types.is_float_dtype(column.dtype)
        if strategy == "mean" and numeric:
            value = column.mean()
        elif strategy == "median" and numeric:
            value = column.median()
        else:
            modes = column.mode(dropna=True)
            value = modes.iloc[0] if len(modes) else None
        filled[name] = column if value is None or pd.isna(value) else column.fillna(value)
    return pd.DataFrame(filled, index=frame.index)


def _target_values(targets: pd.DataFrame) -> Any:
    """Targets as scikit-learn expects them: one column as a 1-d array, several as 2-d."""
    values = targets.astype({name: object for name, dtype in targets.dtypes.items() if dtype == "string"})
    values = values.astype({name: bool for name, dtype in values.dtypes.items() if dtype == "boolean"})
    array = values.to_numpy()
    return array.ravel() if array.shape[1] == 1 else array
