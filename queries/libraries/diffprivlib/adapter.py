"""DiffPrivLib (spec §3.4): a scikit-learn pipeline of diffprivlib models, fitted on the dataset.

The pipeline arrives as diffprivlib_logger JSON that the user controls. It is read by a
strict decoder of our own: step types must be allow-listed classes of diffprivlib.models,
the only instance is the accountant (always replaced by the request's one accountant), and
parameters are JSON scalars, lists and tuples. Nothing the user sent is imported by name,
evaluated or unpickled. Pickle only flows out: the fitted pipeline is the result, stripped to
its DP and public attributes, with a DP score (release.py).
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import pickle
import re
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from django.conf import settings
from rest_framework import serializers

from datasets.connectors.base import DataConnector
from datasets.metadata import column_dtypes, population_size
from lomas.errors import ExternalLibraryError, InvalidQuery
from lomas.requests import DatasetRequestSerializer, StrictCharField
from queries.libraries.base import Cost, DPAdapter, check_work_limits
from queries.libraries.diffprivlib.release import dp_score, released_pipeline

if TYPE_CHECKING:  # diffprivlib and scikit-learn are imported where used: web processes never load them
    from diffprivlib import BudgetAccountant
    from sklearn.pipeline import Pipeline
    from threadpoolctl import ThreadpoolController

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
CLASSIFIERS = frozenset({"DecisionTreeClassifier", "GaussianNB", "LogisticRegression", "RandomForestClassifier"})
# The last steps the server has a DP score for (release.dp_score).
SCORED_LAST_MODELS = CLASSIFIERS | {"KMeans", "LinearRegression"}
# An integer target of a classifier without keyValues: its classes are the integers within its bounds.
MAX_INTEGER_CLASSES = 1000
# Model parameters that set the fewest training rows a fit accepts.
ROW_MINIMUM_PARAMETERS = ("n_clusters", "n_estimators", "n_components")
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

    diffprivlib_json = StrictCharField(trim_whitespace=False)
    feature_columns = serializers.ListField(child=StrictCharField(allow_blank=True, trim_whitespace=False))
    target_columns = serializers.ListField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False), allow_null=True
    )
    test_size = serializers.FloatField()
    test_train_split_seed = serializers.IntegerField()
    imputer_strategy = StrictCharField(trim_whitespace=False)

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


@cache
def _constructor_parameters(model: type) -> frozenset[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(name for name, param in inspect.signature(model).parameters.items() if param.kind in kinds)


class DiffPrivLibAdapter(DPAdapter):
    """One diffprivlib request: a pipeline fitted on the training rows, released stripped and scored under DP.

    - Cost: the accountant total of the steps' declared epsilons (every diffprivlib model spends
      exactly its `epsilon` once per fit, whatever the rows), and the score's share (see
      `_per_row_epsilon`), times the group size `maxContributions`. No fit is needed to know it,
      and run() checks that the fit spent exactly that.
    - Totality: the rows are split by position (a seeded permutation, as scikit-learn's), each part
      is then clipped to the metadata bounds and imputed with metadata constants (or its incomplete
      rows dropped), and the training part gets public rows at the centre of the bounds: one per
      declared class of a classifier, and fillers up to the fewest rows the steps accept. So no fit
      fails because of how many rows or which labels the private data holds.
    - Metadata bounds (`bounds`, `bounds_X`, `bounds_y`, `data_norm`) are given to the first step
      when it accepts them and the user left them null. A PrivacyLeakWarning stops the fit.
    """

    library: ClassVar[str] = LIBRARY
    cost_request = CostRequest
    query_request = QueryRequest
    library_modules = ("diffprivlib", "diffprivlib.models", "sklearn.pipeline", "sklearn.base")

    def __init__(self, *, body: dict[str, Any], connector: DataConnector, metadata: dict[str, Any]) -> None:
        super().__init__(body=body, connector=connector, metadata=metadata)
        self.feature_columns: list[str] = list(body["feature_columns"])
        targets = body.get("target_columns")
        self.target_columns: list[str] | None = None if targets is None or targets in NO_TARGETS else list(targets)
        self.test_size = float(body["test_size"])
        self.seed = int(body["test_train_split_seed"])
        self.imputer_strategy: str = body["imputer_strategy"]

    @classmethod
    def warm_up_request(cls, metadata: dict[str, Any]) -> dict[str, Any] | None:
        """Two-cluster KMeans on the first bounded numeric column, at ε = 1; None without such a column."""
        import diffprivlib

        dtypes = column_dtypes(metadata)
        bounded = [
            column["name"]
            for column in metadata["tableSchema"]["columns"]
            if dtypes[column["name"]] in ("Int64", "float64") and {"minimum", "maximum"} <= set(column)
        ]
        if not bounded:
            return None
        step = {"type": f"{DPL_TYPE}KMeans", "name": "kmeans", "params": {"n_clusters": 2, "epsilon": 1.0}}
        pipeline = {"module": LIBRARY, "version": diffprivlib.__version__, "pipeline": [step]}
        return {
            "diffprivlib_json": json.dumps(pipeline),
            "feature_columns": bounded[:1],
            "target_columns": None,
            "test_size": 0.2,
            "test_train_split_seed": 0,
            "imputer_strategy": "drop",
        }

    def validate(self) -> None:
        """Columns, imputer, split, pipeline and its last step must be usable on this dataset, else InvalidQuery."""
        self._check_columns()
        if self.imputer_strategy not in IMPUTER_STRATEGIES:
            raise InvalidQuery(f"Imputation strategy {self.imputer_strategy} not supported.")
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidQuery(f"test_train_split_seed must be between 0 and {MAX_SEED}.")
        self._check_split_sizes()
        _ = self._model_cost
        if self._last_model in CLASSIFIERS:
            _ = self._classes
        elif self._last_model == "LinearRegression":
            _ = self._target_bounds

    def cost(self) -> Cost:
        """The pipeline's (epsilon, delta) and the score's share, for a group of `maxContributions` rows."""
        self.validate()
        epsilon, delta = self._model_cost
        return Cost(epsilon=self._per_row_epsilon(epsilon), delta=delta).for_group(self.metadata)

    def rehearse(self) -> None:
        """Fit on the twin with every solver stopped after one iteration: the checks of run(), in less time.

        Further iterations raise nothing the first does not (a ConvergenceWarning at most); the score
        and the release after the fit are total.
        """
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._fit(max_iterations=1)

    def run(self) -> dict[str, Any]:
        """The DP score on the test rows and the fitted pipeline stripped to its released attributes, pickled."""
        pipeline, accountant, test = self._fit()
        with _one_blas_thread():
            score = dp_score(
                pipeline,
                test.features,
                test.targets,
                epsilon=self._model_cost[0],
                target_bounds=self._target_bounds if self._last_model == "LinearRegression" else [],
            )
        classes = np.array(self._classes) if self._last_model in CLASSIFIERS else None
        released = released_pipeline(
            pipeline, classes=classes, accountant=accountant, feature_names=self.feature_columns
        )
        model = base64.b64encode(pickle.dumps(released)).decode("ascii")
        return {"type": LIBRARY, "score": score, "model": model}

    def _fit(self, *, max_iterations: int | None = None) -> tuple[Pipeline, BudgetAccountant, Rows]:
        """The pipeline fitted on the padded training rows, its accountant (checked to hold exactly the
        cost) and the test rows; a PrivacyLeakWarning is an error."""
        from diffprivlib import BudgetAccountant
        from diffprivlib.utils import PrivacyLeakWarning

        self.validate()
        train, test = self._parts(self.connector.get_pandas(columns=[*self.feature_columns, *self._used_targets]))
        accountant = BudgetAccountant()
        pipeline = build_pipeline(self._steps, accountant=accountant)
        if max_iterations is not None:
            _limit_iterations(pipeline, max_iterations)
        with warnings.catch_warnings(), self.library_errors(FIT_FAILED), _one_blas_thread():
            warnings.simplefilter("error", PrivacyLeakWarning)
            try:
                pipeline.fit(train.features, train.targets)
            except PrivacyLeakWarning as warning:
                raise ExternalLibraryError(
                    f"PrivacyLeakWarning: {warning}. Lomas server cannot fit pipeline on data, "
                    "PrivacyLeakWarning is a blocker.",
                    library=LIBRARY,
                ) from warning
        spent = tuple(map(float, accountant.total()))
        if spent != self._model_cost:
            raise RuntimeError(f"The diffprivlib fit spent {spent}, not its cost {self._model_cost}.")
        return pipeline, accountant, test

    def _per_row_epsilon(self, model_epsilon: float) -> float:
        """Epsilon per row of the model and its score, the score spending `model_epsilon` on the test rows.

        With a public length and one row per person, a row is in the training or the test part by
        its position alone, so the two releases compose in parallel (the larger epsilon); otherwise
        they add up.
        """
        parallel = self.metadata.get("publicLength") is not None and self.metadata["maxContributions"] == 1
        return model_epsilon if parallel else 2 * model_epsilon

    @cached_property
    def _steps(self) -> list[PipelineStep]:
        """The decoded steps, their work-driving parameters within the server's limits, the first one
        completed with the metadata's bounds it accepts and lacks."""
        import diffprivlib

        steps = decode_pipeline(self.body["diffprivlib_json"], server_version=diffprivlib.__version__)
        for step in steps:
            check_work_limits(
                step.params,
                settings.LOMAS_DIFFPRIVLIB_MAX_PARAMS,
                where=f"Pipeline step {step.name!r}",
                setting="LOMAS_DIFFPRIVLIB_MAX_PARAMS",
            )
        first = steps[0]
        accepted = _accepted_parameters(first.model)
        lacking = [name for name in BOUNDS_PARAMETERS if name in accepted and first.params.get(name) is None]
        if lacking:
            steps[0] = replace(first, params={**first.params, **self._metadata_bounds(first, lacking)})
        return steps

    @cached_property
    def _last_model(self) -> str:
        """The model class of the last step: a classifier, LinearRegression or KMeans (the score needs one)."""
        last = self._steps[-1]
        if last.model not in SCORED_LAST_MODELS:
            raise InvalidQuery(
                f"Pipeline step {last.name!r}: the last step must be a classifier, LinearRegression or KMeans, "
                f"not {last.model} (the server releases the pipeline's score under DP, and has no DP score for it)."
            )
        return last.model

    @cached_property
    def _model_cost(self) -> tuple[float, float]:
        """The accountant total of one spend of each step's epsilon: what fitting the pipeline spends."""
        from diffprivlib import BudgetAccountant

        replay = BudgetAccountant()
        for step, (_, model) in zip(self._steps, build_pipeline(self._steps, accountant=replay).steps, strict=True):
            try:
                replay.spend(model.epsilon, 0.0)
            except (TypeError, ValueError) as exc:
                raise InvalidQuery(
                    f"Pipeline step {step.name!r}: epsilon {model.epsilon!r} is refused: {exc}"
                ) from None
        epsilon, delta = replay.total()
        return float(epsilon), float(delta)

    @cached_property
    def _minimum_train_rows(self) -> int:
        """The fewest training rows every step accepts (clusters, trees, components; one at least)."""
        models = build_pipeline(self._steps, accountant=_throwaway_accountant()).steps
        counts = [getattr(model, name, None) for _, model in models for name in ROW_MINIMUM_PARAMETERS]
        return max([1, *(count for count in counts if isinstance(count, int) and not isinstance(count, bool))])

    @cached_property
    def _used_targets(self) -> list[str]:
        """The target columns the fit and the score read (KMeans ignores targets)."""
        return [] if self._last_model == "KMeans" else list(self.target_columns or [])

    @cached_property
    def _classes(self) -> list[Any]:
        """The classifier's classes, from the metadata of its one target column."""
        if len(self._used_targets) != 1:
            raise InvalidQuery(f"{self._last_model} needs exactly one target column.")
        [name] = self._used_targets
        classes = self._categories(name)
        if classes is None:
            dtype = column_dtypes(self.metadata)[name]
            column = self._column(name)
            if dtype == "Int64" and "minimum" in column and "maximum" in column:
                low, high = int(column["minimum"]), int(column["maximum"])
                if high - low < MAX_INTEGER_CLASSES:
                    classes = list(range(low, high + 1))
        if not classes:
            raise InvalidQuery(
                f"Target column {name} declares no classes: a classifier needs keyValues, a boolean column or an "
                f"integer column with bounds spanning fewer than {MAX_INTEGER_CLASSES} values."
            )
        return sorted(set(classes))

    @cached_property
    def _labels(self) -> np.ndarray:
        """The classes as the classifier's targets hold them: as floats when the target is a number column whose
        every class a float holds exactly (scikit-learn finds the classes of float targets, which it does several
        times per fit, much faster than those of integers), else as declared."""
        [name] = self._used_targets
        if self._dtypes[name] in FEATURE_DTYPES and all(map(_exactly_float, self._classes)):
            return np.asarray(self._classes, dtype="float64")
        return np.asarray(self._classes)

    @cached_property
    def _target_bounds(self) -> list[tuple[float, float]]:
        """Each regression target's bounds, from the metadata."""
        if not self._used_targets:
            raise InvalidQuery("LinearRegression needs target columns.")
        dtypes = column_dtypes(self.metadata)
        not_numeric = [name for name in self._used_targets if dtypes[name] not in FEATURE_DTYPES]
        if not_numeric:
            raise InvalidQuery(f"Regression targets must be numbers or booleans: {not_numeric} are not.")
        return [self._column_bounds(name) for name in self._used_targets]

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
        for name in features:
            self._column_bounds(name)

    def _check_split_sizes(self) -> None:
        """The split must leave training rows of the dataset's declared length (a public fact)."""
        rows = population_size(self.metadata)
        if rows is not None and rows - math.ceil(self.test_size * rows) < 1:
            raise InvalidQuery(
                f"test_size {self.test_size} leaves no training row of the {rows} rows the metadata declares."
            )

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

    @cached_property
    def _dtypes(self) -> dict[str, str]:
        return column_dtypes(self.metadata)

    def _column(self, name: str) -> dict[str, Any]:
        return next(column for column in self.metadata["tableSchema"]["columns"] if column["name"] == name)

    def _column_bounds(self, name: str) -> tuple[float, float]:
        column = self._column(name)
        if self._dtypes[name] == "boolean":
            return 0.0, 1.0
        if "minimum" not in column or "maximum" not in column:
            raise InvalidQuery(f"Column {name} has no bounds in the metadata.")
        return float(column["minimum"]), float(column["maximum"])

    def _categories(self, name: str) -> list[Any] | None:
        """The column's declared categories (keyValues; False and True for a boolean), or None."""
        column = self._column(name)
        boolean = self._dtypes[name] == "boolean"
        if "keyValues" in column:
            return [bool(value) for value in column["keyValues"]] if boolean else list(column["keyValues"])
        return [False, True] if boolean else None

    def _fill_value(self, name: str) -> Any:
        """The metadata constant that fills a missing value: never a statistic of the rows.

        A classifier's target gets its first class; `most_frequent` gives a column with declared
        categories its first one; every other value is the midpoint of the column's bounds (`mean`
        and `median` alike).
        """
        if self._last_model in CLASSIFIERS and name in self._used_targets:
            return self._classes[0]
        categories = self._categories(name)
        if categories and self.imputer_strategy == "most_frequent":
            return categories[0]
        low, high = self._column_bounds(name)
        return (low + high) / 2

    def _parts(self, frame: pd.DataFrame) -> tuple[Rows, Rows]:
        """Training and test rows of the prepared rows, the training part padded with the public rows
        (`_public_rows`).

        The test part is `ceil(test_size · rows)` positions drawn with the request's seed, and preparing is
        row by row (clip, impute, drop), so a row's part depends on its position alone. The rows keep their
        order (every model but a forest fits a sum over rows; a forest, which gives each tree a run of
        consecutive rows, gets its training rows shuffled).
        """
        prepared, usable = self._prepared(frame)
        generator = np.random.default_rng(self.seed)
        in_test = np.zeros(len(frame), dtype=bool)
        in_test[generator.choice(len(frame), math.ceil(self.test_size * len(frame)), replace=False)] = True
        train, test = np.flatnonzero(usable & ~in_test), np.flatnonzero(usable & in_test)
        if any(step.model == "RandomForestClassifier" for step in self._steps):
            train = generator.permutation(train)
        return prepared.take(train, padding=self._public_rows(len(train))), prepared.take(test)

    def _prepared(self, frame: pd.DataFrame) -> tuple[Rows, np.ndarray]:
        """Features as floats clipped to their bounds, targets likewise (a classifier's as `_labels`), imputed;
        and which rows are usable (complete under `drop`, with a declared class for a classifier)."""
        dropping = self.imputer_strategy == "drop"
        usable = np.ones(len(frame), dtype=bool)
        features = np.empty((len(frame), len(self.feature_columns)))
        for position, name in enumerate(self.feature_columns):
            missing = self._clip_into(features[:, position], frame[name])
            usable &= ~(missing & dropping)
        if not self._used_targets:
            return Rows(features, None), usable
        if self._last_model in CLASSIFIERS:
            labels, declared, missing = self._labelled(frame[self._used_targets[0]])
            usable &= (declared | missing) & ~(missing & dropping)
            return Rows(features, labels), usable
        targets = np.empty((len(frame), len(self._used_targets)))
        for position, name in enumerate(self._used_targets):
            missing = self._clip_into(targets[:, position], frame[name])
            usable &= ~(missing & dropping)
        return Rows(features, targets[:, 0] if len(self._used_targets) == 1 else targets), usable

    def _clip_into(self, out: np.ndarray, column: pd.Series) -> np.ndarray:
        """Write a number column into `out` as floats clipped to its bounds, its gaps filled (`_fill_value`);
        returns where the gaps were."""
        values = column.to_numpy(dtype="float64", na_value=np.nan)  # may be the frame's own array: read only
        missing = np.isnan(values)
        np.clip(values, *self._column_bounds(str(column.name)), out=out)
        if missing.any():
            out[missing] = self._fill_value(str(column.name))
        return missing

    def _labelled(self, column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A classifier's target column as `_labels` (a gap gets the first class), which values are declared
        classes and where the gaps were."""
        labels = self._labels
        if labels.dtype == np.float64:
            values = column.to_numpy(dtype="float64", na_value=np.nan)  # may be the frame's own array: read only
            missing = np.isnan(values)
            filled = np.where(missing, labels[0], values) if missing.any() else values
            return filled, np.isin(values, labels), missing
        missing = column.isna().to_numpy()
        codes = pd.Index(self._classes).get_indexer(column)
        return labels[np.where(missing, 0, np.maximum(codes, 0))], codes >= 0, missing

    def _public_rows(self, train_rows: int) -> Rows:
        """Public rows at the centre of the bounds: one per class of a classifier, then as many as the steps
        need to reach their fewest rows with the `train_rows` training rows."""
        classes = len(self._classes) if self._last_model in CLASSIFIERS else 0
        count = classes + max(0, self._minimum_train_rows - train_rows - classes)
        features = np.tile([sum(self._column_bounds(name)) / 2 for name in self.feature_columns], (count, 1))
        if not self._used_targets:
            return Rows(features, None)
        if classes:  # each class once, then the first class (`_fill_value`)
            return Rows(features, self._labels[[*range(classes), *[0] * (count - classes)]])
        fills = [self._fill_value(name) for name in self._used_targets]
        targets = np.tile(fills, (count, 1))
        return Rows(features, targets[:, 0] if len(fills) == 1 else targets)


@dataclass(frozen=True)
class Rows:
    """Prepared rows: the features as a float matrix (one column per feature, in C order, as scikit-learn
    reads it without a copy) and the targets (one column as a 1-d array, several as 2-d; None without)."""

    features: np.ndarray
    targets: np.ndarray | None

    def take(self, positions: np.ndarray, *, padding: Rows | None = None) -> Rows:
        """The rows at `positions`, in order, then `padding`'s rows, each array copied once."""
        features = _take(self.features, positions, None if padding is None else padding.features)
        if self.targets is None:
            return Rows(features, None)
        return Rows(features, _take(self.targets, positions, None if padding is None else padding.targets))


def _take(values: np.ndarray, positions: np.ndarray, padding: np.ndarray | None) -> np.ndarray:
    """values[positions] followed by `padding` (of the same dtype: both follow from the metadata alone).

    The positions are valid: mode="clip" only spares numpy the buffered copy it makes to check them.
    """
    extra = 0 if padding is None else len(padding)
    taken = np.empty((len(positions) + extra, *values.shape[1:]), dtype=values.dtype)
    np.take(values, positions, axis=0, out=taken[: len(positions)], mode="clip")
    if padding is not None:
        taken[len(positions) :] = padding
    return taken


def _exactly_float(label: Any) -> bool:
    """Whether a float holds the number `label` exactly (a boolean, an integer of at most 53 bits, a finite float)."""
    if isinstance(label, float):
        return math.isfinite(label)
    return isinstance(label, int) and abs(label) <= 2**53


def _accepted_parameters(model_name: str) -> frozenset[str]:
    from diffprivlib import models

    return _constructor_parameters(getattr(models, model_name))


def _limit_iterations(pipeline: Pipeline, iterations: int) -> None:
    """Cap each step's valid `max_iter` (an invalid one is left for the fit to refuse)."""
    for _, model in pipeline.steps:
        max_iter = getattr(model, "max_iter", None)
        if isinstance(max_iter, int) and not isinstance(max_iter, bool) and max_iter > iterations:
            model.max_iter = iterations


def _one_blas_thread() -> AbstractContextManager[Any]:
    """BLAS limited to one thread: a fit's matrices are a few columns wide, too narrow for threads to
    help, and a second thread spinning beside it more than doubles a small fit's time (PENGUIN's)."""
    return _blas_threads().limit(limits=1, user_api="blas")


@cache
def _blas_threads() -> ThreadpoolController:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _throwaway_accountant() -> BudgetAccountant:
    from diffprivlib import BudgetAccountant

    return BudgetAccountant()
