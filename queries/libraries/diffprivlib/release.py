"""What a diffprivlib query releases: the model stripped to its DP or public attributes, and a DP score.

The returned model keeps, per model class, only the fitted attributes that diffprivlib computes
under DP or that are public (the feature count and names, class labels taken from the metadata);
everything else a fit leaves (`labels_`, `inertia_`, `n_samples_seen_`, `n_samples_`, `n_iter_`,
`class_count_`, `singular_values_`, ...) is dropped. The score is a Laplace release over the test
rows (see `dp_score`), never an exact statistic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from diffprivlib import BudgetAccountant
    from sklearn.pipeline import Pipeline

# Public fitted attributes every model may keep: the number of features and their names.
PUBLIC_ATTRIBUTES = ("n_features_in_", "feature_names_in_")
# Per diffprivlib model, the fitted attributes that are DP outputs (or fixed by public parameters).
RELEASED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "StandardScaler": ("mean_", "var_", "scale_"),
    "LogisticRegression": ("coef_", "intercept_"),
    "LinearRegression": ("coef_", "intercept_"),
    "KMeans": ("cluster_centers_",),
    "GaussianNB": ("theta_", "var_", "class_prior_", "epsilon_"),
    # explained_variance_ is a DP eigenvalue over (n - 1); without singular_values_ the count stays hidden.
    "PCA": (
        "components_",
        "mean_",
        "n_components_",
        "explained_variance_",
        "explained_variance_ratio_",
        "noise_variance_",
        "_fit_svd_solver",
    ),
    # The tree's splits are drawn from the bounds alone; each leaf holds one PermuteAndFlip label.
    "DecisionTreeClassifier": ("tree_", "n_classes_", "n_outputs_"),
    "RandomForestClassifier": ("estimators_", "estimator_", "n_classes_", "n_outputs_"),
}
# Models whose fit takes the labels from the data: their classes_ is set from the metadata instead.
CLASSES_FROM_DATA = frozenset({"LogisticRegression", "GaussianNB"})
# Models whose classes_ follows their public `classes` parameter.
CLASSES_FROM_PARAMETER = frozenset({"DecisionTreeClassifier", "RandomForestClassifier"})


def released_pipeline(
    fitted: Pipeline, *, classes: np.ndarray | None, accountant: BudgetAccountant, feature_names: list[str]
) -> Pipeline:
    """A copy of the fitted pipeline holding only released attributes, every step on `accountant`.

    The pipeline is fitted on a float matrix: its first step gets the `feature_names` as scikit-learn
    sets them on the step that reads a frame (so the model checks the columns of the frames it is given).
    """
    from sklearn.pipeline import Pipeline

    released = Pipeline(
        [(name, _released_model(model, classes=classes, accountant=accountant)) for name, model in fitted.steps]
    )
    released.steps[0][1].feature_names_in_ = np.asarray(feature_names, dtype=object)
    return released


def _released_model(fitted: Any, *, classes: np.ndarray | None, accountant: BudgetAccountant) -> Any:
    """An unfitted copy of `fitted` (same public parameters) given its allow-listed attributes only."""
    from sklearn.base import clone

    kind = type(fitted).__name__
    released = clone(fitted)
    released.accountant = accountant
    for name in (*PUBLIC_ATTRIBUTES, *RELEASED_ATTRIBUTES[kind]):
        if hasattr(fitted, name):
            setattr(released, name, getattr(fitted, name))
    if kind in CLASSES_FROM_DATA:
        released.classes_ = classes
    if kind == "GaussianNB" and fitted.priors is None:
        # Its empirical priors are noisy class counts over the exact number of training rows, which
        # they would reveal: unless the request gives priors, they are uniform over the public classes.
        released.class_prior_ = np.full(len(released.classes_), 1 / len(released.classes_))
    elif kind in CLASSES_FROM_PARAMETER:
        released.classes_ = np.ravel(fitted.classes)
    if kind == "RandomForestClassifier":
        released.estimators_ = [
            _released_model(tree, classes=classes, accountant=accountant) for tree in fitted.estimators_
        ]
    return released


def dp_score(
    fitted: Pipeline,
    x_test: np.ndarray,
    y_test: np.ndarray | None,
    *,
    epsilon: float,
    target_bounds: list[tuple[float, float]],
) -> float:
    """The pipeline's score on the test rows, released with Laplace noise at `epsilon` in total.

    - a classifier: accuracy, a noisy count of correct predictions over a noisy count of test
      rows (epsilon / 2 each, sensitivity 1), clipped to [0, 1];
    - LinearRegression: R² per target from noisy sums (the row count, and per target the squared
      errors, the centred targets and their squares, epsilon split evenly, predictions and targets
      clipped to the metadata bounds), each clipped to [-1, 1], then averaged;
    - KMeans: minus the noisy sum of squared distances to the nearest centre, each clipped to the
      squared diameter of the step's bounds (sensitivity).
    """
    from sklearn.base import is_classifier, is_regressor

    final = fitted.steps[-1][1]
    if is_classifier(final):
        return _accuracy(fitted, x_test, y_test, epsilon=epsilon)
    if is_regressor(final):
        return _r2(fitted, x_test, y_test, epsilon=epsilon, target_bounds=target_bounds)
    return _negative_inertia(fitted, x_test, epsilon=epsilon)


def _laplace(value: float, *, epsilon: float, sensitivity: float) -> float:
    from diffprivlib.mechanisms import Laplace

    return float(Laplace(epsilon=epsilon, delta=0.0, sensitivity=sensitivity).randomise(float(value)))


def _accuracy(fitted: Pipeline, x_test: np.ndarray, y_test: Any, *, epsilon: float) -> float:
    correct = int(np.sum(fitted.predict(x_test) == y_test)) if len(x_test) else 0
    noisy_correct = _laplace(correct, epsilon=epsilon / 2, sensitivity=1.0)
    noisy_rows = _laplace(len(x_test), epsilon=epsilon / 2, sensitivity=1.0)
    return float(np.clip(noisy_correct / max(noisy_rows, 1.0), 0.0, 1.0))


def _r2(
    fitted: Pipeline, x_test: np.ndarray, y_test: Any, *, epsilon: float, target_bounds: list[tuple[float, float]]
) -> float:
    lows, highs = (np.array(side, dtype=float) for side in zip(*target_bounds, strict=True))
    targets = np.asarray(y_test, dtype=float).reshape(len(x_test), len(target_bounds))
    if len(x_test):
        predicted = np.asarray(fitted.predict(x_test), dtype=float).reshape(targets.shape)
    else:
        predicted = np.empty(targets.shape)
    predicted = np.clip(predicted, lows, highs)
    share = epsilon / (1 + 3 * len(target_bounds))
    noisy_rows = max(_laplace(len(x_test), epsilon=share, sensitivity=1.0), 1.0)
    scores = []
    for j, (low, high) in enumerate(zip(lows, highs, strict=True)):
        width, centre = high - low, (high + low) / 2
        centred = targets[:, j] - centre
        errors = _laplace(np.sum((targets[:, j] - predicted[:, j]) ** 2), epsilon=share, sensitivity=width**2)
        total = _laplace(np.sum(centred), epsilon=share, sensitivity=width)
        squares = _laplace(np.sum(centred**2), epsilon=share, sensitivity=width**2 / 4)
        spread = squares - total**2 / noisy_rows
        r2 = 1.0 - max(errors, 0.0) / spread if spread > 0 else -1.0
        scores.append(float(np.clip(r2, -1.0, 1.0)))
    return float(np.mean(scores))


def _negative_inertia(fitted: Pipeline, x_test: np.ndarray, *, epsilon: float) -> float:
    kmeans = fitted.steps[-1][1]
    lows, highs = (np.asarray(side, dtype=float) for side in kmeans.bounds)
    squared_diameter = float(np.sum((highs - lows) ** 2))
    inertia = 0.0
    if len(x_test):
        points = x_test if len(fitted.steps) == 1 else fitted[:-1].transform(x_test)
        points = np.clip(np.asarray(points, dtype=float), lows, highs)
        distances = ((points[:, None, :] - kmeans.cluster_centers_[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        inertia = float(np.sum(np.clip(distances, 0.0, squared_diameter)))
    noisy = _laplace(inertia, epsilon=epsilon, sensitivity=squared_diameter)
    return -noisy if noisy > 0 else 0.0
