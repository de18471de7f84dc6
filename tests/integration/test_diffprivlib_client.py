"""DiffPrivLib pipelines built and sent by lomas-client 0.5.1 against a live server (PostgreSQL,
Redis, a Celery worker): costed, run on dummy and real data, charged exactly, read back."""

import pytest

PENGUIN_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
PUMS_FEATURES = ["age", "sex", "educ", "race", "married"]
USER, PASSWORD = "Dr.Pipeline", "dr.pipeline-pw"


@pytest.fixture(scope="module")
def researcher(live_stack):
    """A researcher of their own (other modules' users keep their budgets): PENGUIN and PUMS."""
    live_stack.add_researchers({USER: (PASSWORD, {"PENGUIN": (10, 0.005), "PUMS": (5, 0.0005)})})
    return {"user": USER, "password": PASSWORD}


def _assert_charged_exactly_and_read_back(out, *, cost_epsilon, step_classes):
    assert out["spent_before"] == {"total_spent_epsilon": 0.0, "total_spent_delta": 0.0}
    assert out["cost"] == {"epsilon": cost_epsilon, "delta": 0.0}
    assert (out["dummy"]["epsilon"], out["dummy"]["delta"]) == (cost_epsilon, 0.0)
    assert (out["result"]["epsilon"], out["result"]["delta"]) == (cost_epsilon, 0.0)
    # The spent budget is exactly the reported cost.
    assert out["spent_after"] == {"total_spent_epsilon": out["result"]["epsilon"], "total_spent_delta": 0.0}
    for model in (out["dummy"]["model"], out["result"]["model"]):
        assert model["class"] == "sklearn.pipeline.Pipeline"
        assert [cls for _, cls in model["steps"]] == step_classes
    [previous] = out["previous"]
    assert previous["dp_library"] == "diffprivlib"
    assert previous["epsilon"] == cost_epsilon
    assert previous["score"] == out["result"]["score"]
    assert previous["model"] == out["result"]["model"]


def test_penguin_scaler_and_logistic_regression_through_lomas_client(live_stack, researcher):
    out = live_stack.client(
        "scenarios_diffprivlib:pipeline_walkthrough",
        **researcher,
        dataset="PENGUIN",
        pipeline="penguin_logistic",
        features=PENGUIN_FEATURES,
        targets=["species"],
        example=[39.1, 18.7, 181.0, 3750.0],
    )

    _assert_charged_exactly_and_read_back(
        out,
        cost_epsilon=1.5,
        step_classes=[
            "diffprivlib.models.standard_scaler.StandardScaler",
            "diffprivlib.models.logistic_regression.LogisticRegression",
        ],
    )
    assert 0.0 <= out["result"]["score"] <= 1.0
    assert out["result"]["model"]["prediction"] in {"Adelie", "Chinstrap", "Gentoo"}
    assert out["previous"][0]["feature_columns"] == PENGUIN_FEATURES


def test_pums_linear_regression_through_lomas_client(live_stack, researcher):
    out = live_stack.client(
        "scenarios_diffprivlib:pipeline_walkthrough",
        **researcher,
        dataset="PUMS",
        pipeline="pums_linear",
        features=PUMS_FEATURES,
        targets=["income"],
        example=[40, 1, 12, 1, 1],
    )

    _assert_charged_exactly_and_read_back(
        out, cost_epsilon=1.0, step_classes=["diffprivlib.models.linear_regression.LinearRegression"]
    )
    assert isinstance(out["result"]["score"], float)
    assert isinstance(out["result"]["model"]["prediction"], float)


@pytest.mark.parametrize(
    ("pipeline", "dataset", "features", "targets", "error", "message"),
    [
        ("seeded", "PUMS", PUMS_FEATURES, ["income"], "InvalidQueryException", "random_state must be null"),
        ("leaky", "PENGUIN", PENGUIN_FEATURES, ["species"], "ExternalLibraryException", "PrivacyLeakWarning"),
    ],
)
def test_refused_pipelines_reach_the_client_as_lomas_errors_and_charge_nothing(
    live_stack, researcher, pipeline, dataset, features, targets, error, message
):
    out = live_stack.client(
        "scenarios_diffprivlib:refused_pipeline",
        **researcher,
        dataset=dataset,
        pipeline=pipeline,
        features=features,
        targets=targets,
    )

    assert out["error"] == error
    assert message in out["message"]
    assert out["spent_after"] == out["spent_before"]
