"""DiffPrivLib scenarios of a researcher using lomas-client 0.5.1: pipelines built with the
client's own diffprivlib and sent by its serializer (diffprivlib_logger)."""

import time
from typing import Any

import pandas as pd
from client_session import client_error as _error
from client_session import connect as _client
from diffprivlib import models
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted


def _penguin_logistic(client: Any, features: list[str]) -> Pipeline:
    """A scaler bounded by the metadata, then a logistic regression on the scaled features."""
    return Pipeline(
        [
            ("scaler", models.StandardScaler(epsilon=0.5, bounds=client.get_diffprivlib_bounds(features))),
            ("classifier", models.LogisticRegression(epsilon=1.0, data_norm=5)),
        ]
    )


def _pums_linear(client: Any, features: list[str]) -> Pipeline:
    """A linear regression whose bounds the server takes from the metadata."""
    return Pipeline([("lr", models.LinearRegression(epsilon=1.0))])


PIPELINES = {"penguin_logistic": _penguin_logistic, "pums_linear": _pums_linear}


def _describe(model: Any, features: list[str], example: list[float]) -> dict[str, Any]:
    """What the client got back: a fitted scikit-learn Pipeline of diffprivlib models."""
    check_is_fitted(model)
    prediction = model.predict(pd.DataFrame([example], columns=features))[0]
    return {
        "class": f"{type(model).__module__}.{type(model).__name__}",
        "steps": [[name, f"{type(step).__module__}.{type(step).__name__}"] for name, step in model.steps],
        "prediction": prediction.item() if hasattr(prediction, "item") else prediction,
    }


def pipeline_walkthrough(
    user: str, password: str, dataset: str, pipeline: str, features: list[str], targets: list[str], example: list[float]
) -> dict:
    """Cost, dummy and real query of one pipeline, budgets around them, then the query history."""
    client = _client(user, password, dataset)
    dpl = PIPELINES[pipeline](client, features)
    out: dict[str, Any] = {"spent_before": client.get_total_spent_budget().model_dump()}
    started = time.perf_counter()
    out["cost"] = client.diffprivlib.cost(dpl, feature_columns=features, target_columns=targets).model_dump()
    out["cost_seconds"] = time.perf_counter() - started
    dummy = client.diffprivlib.query(dpl, feature_columns=features, target_columns=targets, dummy=True)
    out["dummy"] = {"epsilon": dummy.epsilon, "delta": dummy.delta, "score": dummy.result.score,
                    "model": _describe(dummy.result.model, features, example)}  # fmt: skip
    started = time.perf_counter()
    real = client.diffprivlib.query(dpl, feature_columns=features, target_columns=targets)
    out["query_seconds"] = time.perf_counter() - started
    out["result"] = {"epsilon": real.epsilon, "delta": real.delta, "score": real.result.score,
                     "model": _describe(real.result.model, features, example)}  # fmt: skip
    out["spent_after"] = client.get_total_spent_budget().model_dump()
    out["previous"] = [
        {
            "dp_library": query["dp_library"],
            "feature_columns": query["client_input"]["feature_columns"],
            "epsilon": query["response"]["epsilon"],
            "score": query["response"]["result"]["score"],
            "model": _describe(query["response"]["result"]["model"], features, example),
        }
        for query in client.get_previous_queries()
    ]
    return out


def _seeded(client: Any, features: list[str]) -> Pipeline:
    """A linear regression asking for a fixed seed (it would make the noise reproducible)."""
    return Pipeline([("lr", models.LinearRegression(epsilon=1.0, random_state=7))])


def _leaky(client: Any, features: list[str]) -> Pipeline:
    """A logistic regression after a scaler without data_norm: diffprivlib's PrivacyLeakWarning."""
    return Pipeline(
        [
            ("scaler", models.StandardScaler(bounds=client.get_diffprivlib_bounds(features))),
            ("classifier", models.LogisticRegression()),
        ]
    )


REFUSED_PIPELINES = {"seeded": _seeded, "leaky": _leaky}


def refused_pipeline(
    user: str, password: str, dataset: str, pipeline: str, features: list[str], targets: list[str]
) -> dict:
    """A real query the server refuses: the error the client raised, and the spent budget around it."""
    client = _client(user, password, dataset)
    out: dict[str, Any] = {"spent_before": client.get_total_spent_budget().model_dump()}
    try:
        client.diffprivlib.query(REFUSED_PIPELINES[pipeline](client, features), feature_columns=features,
                                 target_columns=targets)  # fmt: skip
    except Exception as exc:  # the client raises lomas errors as exceptions
        out.update(_error(exc))
    out["spent_after"] = client.get_total_spent_budget().model_dump()
    return out
