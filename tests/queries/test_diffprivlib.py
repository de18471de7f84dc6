"""The diffprivlib adapter and its strict pipeline decoder, on the demo data with the real library."""

import base64
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from diffprivlib import BudgetAccountant
from diffprivlib import models as dpl_models
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from datasets.connectors.base import DataConnector, only_columns
from datasets.connectors.local import PathConnector
from lomas.errors import ExternalLibraryError, InvalidQuery
from queries.libraries.diffprivlib.adapter import (
    ALLOWED_MODELS,
    DiffPrivLibAdapter,
    build_pipeline,
    decode_pipeline,
)

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
PENGUIN_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
PUMS_FEATURES = ["age", "sex", "educ", "race", "married"]
ACCOUNTANT = "_dpl_instance:BudgetAccountant"

# Steps exactly as lomas-client 0.5.1 (diffprivlib_logger 0.0.4) serialises them.
SCALER = {
    "type": "_dpl_type:StandardScaler",
    "name": "scaler",
    "params": {"with_mean": True, "with_std": True, "copy": True, "epsilon": 0.5, "bounds": None,
               "random_state": None, "accountant": ACCOUNTANT},
}  # fmt: skip
LOGISTIC = {
    "type": "_dpl_type:LogisticRegression",
    "name": "classifier",
    "params": {"C": 1.0, "tol": 0.0001, "fit_intercept": True, "random_state": None, "max_iter": 100, "verbose": 0,
               "warm_start": False, "n_jobs": None, "epsilon": 1.0, "data_norm": 5, "accountant": ACCOUNTANT},
}  # fmt: skip
LINEAR = {
    "type": "_dpl_type:LinearRegression",
    "name": "lr",
    "params": {"fit_intercept": True, "copy_X": True, "epsilon": 2.0, "bounds_X": None, "bounds_y": None,
               "random_state": None, "accountant": ACCOUNTANT},
}  # fmt: skip
NAIVE_BAYES = {"type": "_dpl_type:GaussianNB", "name": "nb", "params": {"epsilon": 1.0, "accountant": ACCOUNTANT}}
KMEANS = {
    "type": "_dpl_type:KMeans",
    "name": "kmeans",
    "params": {"n_clusters": 3, "epsilon": 1.0, "bounds": None, "random_state": None, "accountant": ACCOUNTANT},
}


def load(name: str) -> dict[str, Any]:
    return json.loads((DEMO / "metadata" / f"{name}.json").read_text(encoding="utf-8"))


def pipeline_json(*steps: dict[str, Any], version: str = "0.6.7", module: str = "diffprivlib") -> str:
    return json.dumps({"module": module, "version": version, "pipeline": list(steps)})


def with_params(step: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {**step, "params": {**step["params"], **params}}


class FrameConnector(DataConnector):
    """A given frame, standing for private data."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return only_columns(self.frame, columns)


def adapter(
    *steps: dict[str, Any],
    dataset: str = "penguin",
    features: list[str] | None = None,
    targets: list[str] | None = None,
    connector: DataConnector | None = None,
    **extra: Any,
) -> DiffPrivLibAdapter:
    metadata = load(dataset)
    body = {
        "diffprivlib_json": pipeline_json(*(steps or (SCALER, LOGISTIC))),
        "feature_columns": features or PENGUIN_FEATURES,
        "target_columns": targets if targets is not None else ["species"],
        "test_size": 0.2,
        "test_train_split_seed": 1,
        "imputer_strategy": "drop",
        **extra,
    }
    return DiffPrivLibAdapter(
        body=body, connector=connector or PathConnector(f"{dataset}.csv", metadata=metadata), metadata=metadata
    )


def unpickled(result: dict[str, Any]) -> Pipeline:
    """The model as lomas-client reads it (pickle flows from the server to the client only)."""
    assert result["type"] == "diffprivlib"
    return pickle.loads(base64.b64decode(result["model"]))


# --- the decoder --------------------------------------------------------------------------------


def test_client_pipeline_decodes_into_allow_listed_steps_with_tuples_and_no_accountant() -> None:
    bounded = with_params(SCALER, bounds={"_tuple": True, "_items": [[30.0, 13.0], [65.0, 23.0]]})

    steps = decode_pipeline(pipeline_json(bounded, LOGISTIC), server_version="0.6.6")

    assert [(step.name, step.model) for step in steps] == [
        ("scaler", "StandardScaler"),
        ("classifier", "LogisticRegression"),
    ]
    assert steps[0].params["bounds"] == ([30.0, 13.0], [65.0, 23.0])
    assert isinstance(steps[0].params["bounds"], tuple)
    assert "accountant" not in steps[0].params
    assert "accountant" not in steps[1].params


def test_every_built_step_spends_from_the_one_server_accountant() -> None:
    accountant = BudgetAccountant()
    steps = decode_pipeline(pipeline_json(SCALER, with_params(LOGISTIC, accountant=None)), server_version="0.6.6")

    pipeline = build_pipeline(steps, accountant=accountant)

    assert [type(model) for _, model in pipeline.steps] == [dpl_models.StandardScaler, dpl_models.LogisticRegression]
    assert all(model.accountant is accountant for _, model in pipeline.steps)
    assert accountant is not BudgetAccountant.load_default(None)


def test_the_allow_list_is_the_models_of_diffprivlib() -> None:
    for name in ALLOWED_MODELS:
        assert getattr(dpl_models, name).__module__.startswith("diffprivlib.models.")


@pytest.mark.parametrize("version", ["0.6.0", "0.6.6", "0.6.7", "0.6.12"])
def test_any_version_of_the_server_series_is_accepted(version: str) -> None:
    assert decode_pipeline(pipeline_json(SCALER, version=version), server_version="0.6.6")


@pytest.mark.parametrize("version", ["0.5.1", "0.7.0", "1.6.7", "0.6", "0.6.7rc1", "", 0.6, None])
def test_other_versions_are_refused_naming_the_accepted_series(version: Any) -> None:
    with pytest.raises(
        InvalidQuery, match=r"this server runs diffprivlib 0\.6\.6 and accepts pipelines of diffprivlib 0\.6\.x"
    ):
        decode_pipeline(pipeline_json(SCALER, version=version), server_version="0.6.6")


@pytest.mark.parametrize("module", ["sklearn", "os", "Diffprivlib", None])
def test_a_module_other_than_diffprivlib_is_refused(module: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^JSON 'module' must be 'diffprivlib'"):
        decode_pipeline(pipeline_json(SCALER, module=module), server_version="0.6.6")


@pytest.mark.parametrize(
    "step_type",
    [
        "_dpl_type:os.system",
        "os.system",
        "_dpl_type:builtins.eval",
        "builtins.eval",
        "_dpl_type:sklearn.linear_model.LogisticRegression",
        "sklearn.linear_model.LogisticRegression",
        "_dpl_type:BudgetAccountant",  # a diffprivlib class, not a model
        "_dpl_type:utils",  # a module inside diffprivlib.models
        "_dpl_type:__builtins__",
        "_dpl_type:this",  # importing it would print; it is never imported
        "_dpl_instance:StandardScaler",
        "StandardScaler",
        None,
    ],
)
def test_a_step_type_off_the_allow_list_is_refused_without_importing_it(step_type: Any) -> None:
    loaded = set(sys.modules)

    with pytest.raises(InvalidQuery, match="is not an allowed diffprivlib model"):
        decode_pipeline(pipeline_json({**SCALER, "type": step_type}), server_version="0.6.6")

    assert set(sys.modules) == loaded


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({"epsilon": "_dpl_instance:os.system"}, "only the accountant may name a diffprivlib object"),
        ({"epsilon": "_dpl_instance:BudgetAccountant"}, "only the accountant may name a diffprivlib object"),
        ({"bounds": "_dpl_type:LogisticRegression"}, "only the accountant may name a diffprivlib object"),
        ({"accountant": "_dpl_instance:os.system"}, "accountant must be null or '_dpl_instance:BudgetAccountant'"),
        ({"accountant": {"_tuple": True, "_items": []}}, "accountant must be null"),
        ({"bounds": {"min": 0, "max": 1}}, "only JSON scalars, lists and tuples"),
        ({"bounds": [{"__reduce__": "os.system"}]}, "only JSON scalars, lists and tuples"),
        ({"bounds": {"_tuple": True, "_items": [1], "extra": 2}}, "only JSON scalars, lists and tuples"),
        ({"bounds": {"_tuple": "yes", "_items": [1]}}, "only JSON scalars, lists and tuples"),
        ({"bounds": {"_tuple": True, "_items": "ab"}}, "a tuple's _items must be a list"),
    ],
)
def test_parameters_other_than_scalars_lists_and_tuples_are_refused(params: dict[str, Any], refused: str) -> None:
    with pytest.raises(InvalidQuery, match=refused):
        decode_pipeline(pipeline_json(with_params(SCALER, **params)), server_version="0.6.6")


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ('{"module": "diffprivlib", "version": "0.6.7", "pipeline": [', "Invalid diffprivlib pipeline JSON"),
        (pipeline_json(with_params(SCALER, epsilon=float("nan"))), "NaN is not a JSON number"),
        (pipeline_json(with_params(SCALER, epsilon=float("inf"))), "Infinity is not a JSON number"),
        ('{"module": "diffprivlib", "module": "os", "version": "0.6.7", "pipeline": []}', "duplicate keys"),
        ("[" * 100_000 + "]" * 100_000, "Invalid diffprivlib pipeline JSON"),
        ('["diffprivlib"]', "must be a JSON object with keys module, version and pipeline"),
        ('{"module": "diffprivlib", "version": "0.6.7", "pipeline": [], "py/object": "os.system"}', "keys module"),
        (pipeline_json(), "at least one step"),
        (pipeline_json({**SCALER, "init": "os.system"}), "keys type, name and params"),
        (pipeline_json(SCALER, SCALER), "step names must be unique"),
        (pipeline_json({**SCALER, "name": "a__b"}), "Invalid pipeline step name"),
        (pipeline_json({**SCALER, "params": ["os.system"]}), "params must be a JSON object"),
    ],
)
def test_malformed_pipelines_are_refused(text: str, refused: str) -> None:
    with pytest.raises(InvalidQuery, match=refused):
        decode_pipeline(text, server_version="0.6.6")


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({"unused_args": {"_tuple": True, "_items": []}}, r"StandardScaler has no parameters \['unused_args'\]"),
        ({"__class__": 1}, r"has no parameters \['__class__'\]"),
        ({"random_state": 0}, "random_state must be null"),
    ],
)
def test_building_refuses_unknown_parameters_and_fixed_seeds(params: dict[str, Any], refused: str) -> None:
    steps = decode_pipeline(pipeline_json(with_params(SCALER, **params)), server_version="0.6.6")
    with pytest.raises(InvalidQuery, match=refused):
        build_pipeline(steps, accountant=BudgetAccountant())


def test_building_refuses_parallel_jobs() -> None:
    steps = decode_pipeline(pipeline_json(SCALER, with_params(LOGISTIC, n_jobs=-1)), server_version="0.6.6")
    with pytest.raises(InvalidQuery, match="n_jobs must be null or 1"):
        build_pipeline(steps, accountant=BudgetAccountant())


# --- the adapter ------------------------------------------------------------------------------------


def test_penguin_scaler_and_logistic_regression_costs_what_its_accountant_spent() -> None:
    penguin = adapter(SCALER, LOGISTIC)
    default_spent = BudgetAccountant.load_default(None).total()

    cost = penguin.twin().cost()
    result = penguin.run()

    assert (cost.epsilon, cost.delta) == (1.5, 0.0)
    assert BudgetAccountant.load_default(None).total() == default_spent  # the process-wide accountant is untouched
    model = unpickled(result)
    assert isinstance(model, Pipeline)
    check_is_fitted(model)
    # The private fit spent exactly the twin's cost: one fit, two spends.
    assert model.steps[0][1].accountant.total() == (1.5, 0.0)
    assert model.steps[0][1].accountant is model.steps[1][1].accountant
    assert 0.0 <= result["score"] <= 1.0
    rows = pd.DataFrame([[39.1, 18.7, 181.0, 3750.0]], columns=PENGUIN_FEATURES)
    assert set(model.predict(rows)) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_the_first_step_gets_the_metadata_bounds_it_lacks_and_keeps_those_given() -> None:
    given = {"_tuple": True, "_items": [[31.0, 14.0, 160.0, 2100.0], [60.0, 22.0, 240.0, 6500.0]]}

    injected = unpickled(adapter(SCALER, LOGISTIC).run()).steps[0][1]
    kept = unpickled(adapter(with_params(SCALER, bounds=given), LOGISTIC).run()).steps[0][1]

    assert [list(side) for side in injected.bounds] == [[30.0, 13.0, 150.0, 2000.0], [65.0, 23.0, 250.0, 7000.0]]
    assert [list(side) for side in kept.bounds] == given["_items"]


def test_a_first_logistic_regression_gets_the_data_norm_of_the_metadata_bounds() -> None:
    model = unpickled(adapter(with_params(LOGISTIC, data_norm=None)).run())

    assert model.steps[0][1].data_norm == pytest.approx(np.sqrt(65**2 + 23**2 + 250**2 + 7000**2))


def test_pums_linear_regression_gets_x_and_y_bounds_and_costs_its_epsilon() -> None:
    pums = adapter(LINEAR, dataset="pums", features=PUMS_FEATURES, targets=["income"])

    cost = pums.cost()
    result = pums.run()

    assert (cost.epsilon, cost.delta) == (2.0, 0.0)
    regression = unpickled(result).steps[0][1]
    assert [list(side) for side in regression.bounds_X] == [[0, 0, 1, 1, 0], [120, 1, 16, 6, 1]]
    assert tuple(regression.bounds_y) == (0.0, 500000.0)
    assert isinstance(result["score"], float)
    assert regression.coef_.shape == (5,)


def test_a_regression_first_step_without_targets_is_400() -> None:
    with pytest.raises(InvalidQuery, match="LinearRegression needs target columns"):
        adapter(LINEAR, dataset="pums", features=PUMS_FEATURES, targets=[""]).cost()


def test_a_cost_call_with_the_clients_empty_target_list_fits_an_unsupervised_model() -> None:
    kmeans = adapter(KMEANS, targets=[""])

    assert kmeans.cost().epsilon == 1.0
    assert unpickled(kmeans.run()).steps[0][1].cluster_centers_.shape == (3, 4)


def test_a_privacy_leak_warning_is_a_422_blocker_on_the_twin() -> None:
    leaky = adapter(SCALER, with_params(LOGISTIC, data_norm=None)).twin()

    with pytest.raises(ExternalLibraryError, match=r"^PrivacyLeakWarning: Data norm has not been specified") as failure:
        leaky.rehearse()

    assert failure.value.message.endswith("Lomas server cannot fit pipeline on data, PrivacyLeakWarning is a blocker.")
    assert failure.value.status == 422
    assert failure.value.library == "diffprivlib"


def test_a_fit_error_of_the_twin_rehearsal_is_passed_on() -> None:
    negative_c = adapter(SCALER, with_params(LOGISTIC, C=-1.0)).twin()

    with pytest.raises(ExternalLibraryError) as failure:
        negative_c.rehearse()

    assert failure.value.message == (
        "Cannot fit pipeline on data because InvalidParameterError: The 'C' parameter of LogisticRegression "
        "must be a float in the range (0.0, inf]. Got -1.0 instead."
    )


def test_private_rows_of_a_single_class_fit_with_every_class_of_the_metadata() -> None:
    frame = PathConnector("penguin.csv", metadata=load("penguin")).get_pandas()
    only_adelie = frame[frame["species"] == "Adelie"].reset_index(drop=True)

    model = unpickled(adapter(SCALER, LOGISTIC, connector=FrameConnector(only_adelie)).run())

    assert list(model.steps[1][1].classes_) == ["Adelie", "Chinstrap", "Gentoo"]


@pytest.mark.parametrize(("target", "classes"), [("Pclass", [1, 2, 3]), ("Survived", [False, True])])
@pytest.mark.parametrize("steps", [(SCALER, LOGISTIC), (NAIVE_BAYES,)])
def test_the_released_model_names_its_features_and_predicts_the_declared_classes_as_typed(
    steps: tuple[dict[str, Any], ...], target: str, classes: list[Any]
) -> None:
    # The server fits on a float matrix, with integer and boolean classes as floats.
    features = ["Age", "Fare"]
    rows = PathConnector("titanic.csv", metadata=load("titanic")).get_pandas()[features].dropna()

    model = unpickled(adapter(*steps, dataset="titanic", features=features, targets=[target]).run())

    assert list(model.feature_names_in_) == features
    assert list(model.classes_) == classes
    assert model.classes_.dtype == np.asarray(classes).dtype
    assert set(model.predict(rows)) <= set(classes)


def test_the_cost_reads_no_data_and_the_last_step_must_have_a_dp_score() -> None:
    class Unreadable(DataConnector):
        def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
            raise AssertionError("the data was read")

    assert adapter(SCALER, LOGISTIC, connector=Unreadable()).cost().epsilon == 1.5
    with pytest.raises(InvalidQuery, match="the last step must be a classifier, LinearRegression or KMeans"):
        adapter(SCALER, connector=Unreadable()).validate()


def test_a_group_of_rows_per_person_multiplies_the_cost_and_the_score_adds_to_it() -> None:
    metadata = {**load("penguin"), "maxContributions": 3}
    grouped = DiffPrivLibAdapter(body=adapter().body, connector=adapter().connector, metadata=metadata)

    # Three rows per person: model and score no longer compose in parallel (1.5 + 1.5), times 3.
    assert grouped.cost().epsilon == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("features", "targets", "refused"),
    [
        (["bill_length_mm", "species"], ["species"], r"^Columns \['species'\] are both feature and target columns\."),
        (["bill_length_mm", "wingspan"], ["species"], r"^Columns not found in the dataset: \['wingspan'\]\."),
        (["bill_length_mm"], ["colour"], r"^Columns not found in the dataset: \['colour'\]\."),
        (["bill_length_mm", "island"], ["species"], r"^Feature columns must be numbers or booleans: \['island'\]"),
        ([""], ["species"], "^Give at least one feature column."),
        (["bill_length_mm", "bill_length_mm"], ["species"], "must not repeat"),
    ],
)
def test_bad_columns_are_400_before_any_data_is_read(features: list[str], targets: list[str], refused: str) -> None:
    class Unreadable(DataConnector):
        def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
            raise AssertionError("the data was read")

    with pytest.raises(InvalidQuery, match=refused):
        adapter(features=features, targets=targets, connector=Unreadable()).validate()


def test_an_unknown_imputation_strategy_is_400() -> None:
    with pytest.raises(InvalidQuery, match=r"^Imputation strategy interpolate not supported\.$"):
        adapter(imputer_strategy="interpolate").validate()


@pytest.mark.parametrize(("strategy", "train_rows"), [("mean", 275), ("median", 275), ("most_frequent", 275)])
def test_imputation_keeps_every_training_position_and_drop_removes_incomplete_rows(
    strategy: str, train_rows: int
) -> None:
    # 344 penguins: the split keeps 275 positions for training (69 = ceil(0.2 * 344) for the test).
    frame = PathConnector("penguin.csv", metadata=load("penguin")).get_pandas()
    kept = adapter(targets=["sex"], imputer_strategy=strategy)
    dropped = adapter(targets=["sex"], imputer_strategy="drop")

    # The training part adds one public row per declared sex.
    assert len(kept._parts(frame)[0].features) == train_rows + 2
    assert len(dropped._parts(frame)[0].features) < train_rows + 2


def test_metadata_constants_fill_numbers_and_labels() -> None:
    frame = pd.DataFrame(
        {
            "x": pd.array([1.0, 2.0, 9.0, None], dtype="float64"),
            "n": pd.array([1, 1, 4, None], dtype="Int64"),
            "label": pd.array(["b", "b", "b", None], dtype="string"),
        }
    )
    metadata = {"maxContributions": 1, "tableSchema": {"columns": [
        {"name": "x", "datatype": "double", "minimum": 0, "maximum": 10},
        {"name": "n", "datatype": "integer", "minimum": 0, "maximum": 10, "keyValues": [3, 7]},
        {"name": "label", "datatype": "string", "keyValues": ["b", "a"]},
    ]}}  # fmt: skip
    filled = {}
    for strategy in ("mean", "median", "most_frequent"):
        body = adapter(NAIVE_BAYES, features=["x", "n"], targets=["label"], imputer_strategy=strategy).body
        probe = DiffPrivLibAdapter(body=body, connector=FrameConnector(frame), metadata=metadata)
        prepared, usable = probe._prepared(frame)
        assert usable.all()
        filled[strategy] = [*prepared.features[3], prepared.targets[3]]

    # The midpoint of the bounds (mean, median), the first declared category (most_frequent), the first class.
    assert filled["mean"] == filled["median"] == [5.0, 5.0, "a"]
    assert filled["most_frequent"] == [5.0, 3.0, "a"]


def test_a_seed_outside_the_split_range_is_400() -> None:
    with pytest.raises(InvalidQuery, match="test_train_split_seed must be between 0 and"):
        adapter(test_train_split_seed=-1).validate()
