"""Red-team tests of the diffprivlib adapter (issue 11, cases 2 and 3): each states its attack in one sentence."""

import base64
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from datasets.connectors.base import DataConnector, only_columns
from datasets.connectors.local import PathConnector
from queries.libraries.diffprivlib.adapter import DiffPrivLibAdapter

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
PENGUIN = json.loads((DEMO / "metadata" / "penguin.json").read_text(encoding="utf-8"))
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
ACCOUNTANT = "_dpl_instance:BudgetAccountant"
SCALER = {"type": "_dpl_type:StandardScaler", "name": "scaler", "params": {"epsilon": 0.5, "accountant": ACCOUNTANT}}
LOGISTIC = {
    "type": "_dpl_type:LogisticRegression",
    "name": "classifier",
    "params": {"epsilon": 1.0, "data_norm": 5, "accountant": ACCOUNTANT},
}
PCA = {
    "type": "_dpl_type:PCA",
    "name": "pca",
    "params": {"n_components": 2, "epsilon": 1.0, "data_norm": 5, "centered": True, "accountant": ACCOUNTANT},
}
NAIVE_BAYES = {"type": "_dpl_type:GaussianNB", "name": "nb", "params": {"epsilon": 1.0, "accountant": ACCOUNTANT}}


def kmeans(clusters: int, epsilon: float) -> dict[str, Any]:
    return {"type": "_dpl_type:KMeans", "name": "kmeans", "params": {"n_clusters": clusters, "epsilon": epsilon}}


class FrameConnector(DataConnector):
    """A given frame, standing for private data."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return only_columns(self.frame, columns)


class Unreadable(DataConnector):
    """Private data that must not be read."""

    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        raise AssertionError("the private data was read")


def private_penguins() -> pd.DataFrame:
    return PathConnector("penguin.csv", metadata=PENGUIN).get_pandas()


def adapter(
    *steps: dict[str, Any], connector: DataConnector, features: list[str] = FEATURES, **body: Any
) -> DiffPrivLibAdapter:
    request = {
        "diffprivlib_json": json.dumps({"module": "diffprivlib", "version": "0.6.7", "pipeline": list(steps)}),
        "feature_columns": features,
        "target_columns": ["species"],
        "test_size": 0.2,
        "test_train_split_seed": 1,
        "imputer_strategy": "drop",
        **body,
    }
    return DiffPrivLibAdapter(body=request, connector=connector, metadata=PENGUIN)


def released(result: dict[str, Any]) -> Pipeline:
    return pickle.loads(base64.b64decode(result["model"]))


def test_a_one_row_test_split_does_not_give_a_kmeans_score_of_minus_the_squared_distance_to_the_centre() -> None:
    """Attack: with test_size=0.001 and one KMeans cluster on body_mass_g, the score was -(x - c)² for the one
    test penguin's mass x and the returned centre c, so two such queries read one exact body mass for 0.002 ε."""
    frame = private_penguins()
    attack = adapter(kmeans(1, 0.001), connector=FrameConnector(frame), features=["body_mass_g"],
                     target_columns=[""], test_size=0.001)  # fmt: skip

    result = attack.run()

    centre = released(result).steps[0][1].cluster_centers_[0, 0]
    exact_scores = -((frame["body_mass_g"].dropna().to_numpy() - centre) ** 2)
    # The Laplace noise (scale 5000² / 0.001) swamps every exact value: the score is 0 (a negative noisy
    # inertia is clipped, whatever the data) or far from -(x - c)² for every penguin.
    assert result["score"] == 0.0 or np.min(np.abs(exact_scores - result["score"])) > 1.0


def test_the_returned_model_holds_no_labels_inertia_counts_or_iterations() -> None:
    """Attack: the returned model kept KMeans labels_ for every training row and the exact inertia_, and the
    exact counts StandardScaler.n_samples_seen_, PCA.n_samples_, GaussianNB.class_count_ (and its class_prior_,
    noisy counts over the exact number of training rows) and LR n_iter_."""
    connector = FrameConnector(private_penguins())

    clusters = released(adapter(kmeans(3, 1.0), connector=connector, target_columns=[""]).run()).steps[0][1]
    scaler, pca, logistic = (
        step for _, step in released(adapter(SCALER, PCA, LOGISTIC, connector=connector).run()).steps
    )
    naive_bayes = released(adapter(NAIVE_BAYES, connector=connector).run()).steps[0][1]

    assert clusters.labels_ is None and clusters.inertia_ is None and clusters.n_iter_ is None
    assert clusters.cluster_centers_.shape == (3, 4)
    assert not hasattr(scaler, "n_samples_seen_")
    assert not hasattr(pca, "n_samples_") and not hasattr(pca, "singular_values_")
    assert not hasattr(logistic, "n_iter_")
    assert not hasattr(naive_bayes, "class_count_")
    assert naive_bayes.class_prior_.tolist() == [1 / 3] * 3  # noisy counts over the exact row count: not released
    assert scaler.mean_.shape == (4,) and pca.components_.shape == (2, 4) and logistic.coef_.shape == (3, 2)


def test_class_labels_come_from_the_metadata_not_from_the_training_rows() -> None:
    """Attack: LogisticRegression.classes_ (and the shape of coef_) listed exactly the species present in the
    private training rows, telling whether any Chinstrap penguin is in the data."""
    frame = private_penguins()
    without_chinstrap = frame[frame["species"] != "Chinstrap"].reset_index(drop=True)

    models = [released(adapter(SCALER, LOGISTIC, connector=FrameConnector(data)).run()).steps[1][1]
              for data in (frame, without_chinstrap)]  # fmt: skip

    for model in models:
        assert list(model.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
        assert model.coef_.shape == (3, 4)


def test_a_two_row_training_split_fits_whether_or_not_the_two_share_a_sex() -> None:
    """Attack: with a two-row training split, the query answered 422 exactly when the two penguins shared a sex
    (a one-class fit), a free equality oracle on private values."""
    frame = private_penguins().dropna().reset_index(drop=True)
    same = frame[frame["sex"] == "MALE"].head(4)
    mixed = pd.concat([frame[frame["sex"] == "MALE"].head(2), frame[frame["sex"] == "FEMALE"].head(2)])

    outcomes = []
    for data in (same, mixed):
        result = adapter(SCALER, LOGISTIC, connector=FrameConnector(data.reset_index(drop=True)),
                         target_columns=["sex"], test_size=0.5).run()  # fmt: skip
        outcomes.append(released(result).steps[1][1])

    assert [list(model.classes_) for model in outcomes] == [["FEMALE", "MALE"]] * 2
    assert [model.coef_.shape for model in outcomes] == [(1, 4)] * 2


@pytest.mark.parametrize("complete_rows", [0, 1, 2, 9])
def test_the_free_estimate_with_drop_and_a_huge_test_size_is_no_count_oracle(complete_rows: int) -> None:
    """Attack: with imputer_strategy 'drop' and test_size = 1 - 1/(N + 0.5), the free cost estimate answered
    400 "Not enough rows" exactly when the private count of complete rows was at most N."""
    test_size = 1 - 1 / (complete_rows + 0.5)
    frame = private_penguins()
    incomplete = frame.assign(bill_length_mm=np.where(frame.index < complete_rows, frame["bill_length_mm"], np.nan))

    estimate = adapter(SCALER, LOGISTIC, connector=Unreadable(), test_size=max(test_size, 0.001)).cost()
    result = adapter(SCALER, LOGISTIC, connector=FrameConnector(incomplete), test_size=max(test_size, 0.001)).run()

    assert (estimate.epsilon, estimate.delta) == (1.5, 0.0)
    assert released(result).steps[0][1].accountant.total() == (1.5, 0.0)
    assert 0.0 <= result["score"] <= 1.0


def test_mean_and_median_imputation_fill_with_the_metadata_midpoint_not_a_private_statistic() -> None:
    """Attack: `mean`/`median` imputation filled a missing value with the exact mean or median of the private
    column, which then shaped the model."""
    frame = private_penguins().head(10).copy()
    frame.loc[0, "body_mass_g"] = np.nan
    heavier = frame.assign(body_mass_g=frame["body_mass_g"] + 1000.0)

    for strategy in ("mean", "median", "most_frequent"):
        fills = []
        for data in (frame, heavier):
            prepared, usable = adapter(
                SCALER, LOGISTIC, connector=FrameConnector(data), imputer_strategy=strategy
            )._prepared(data)
            fills.append(prepared.features[0, FEATURES.index("body_mass_g")])
            assert usable.all()
        assert fills == [4500.0, 4500.0]  # (2000 + 7000) / 2, from the metadata


def test_values_outside_the_metadata_bounds_or_infinite_do_not_make_the_private_fit_fail() -> None:
    """Attack: a value the metadata does not allow (inf, out of bounds) made the fit on private rows raise,
    an error whose occurrence depends on private values."""
    frame = private_penguins()
    frame.loc[3, "body_mass_g"] = np.inf
    frame.loc[5, "flipper_length_mm"] = -1e300

    result = adapter(SCALER, LOGISTIC, connector=FrameConnector(frame), imputer_strategy="mean").run()

    assert 0.0 <= result["score"] <= 1.0
