"""The DiffPrivLib routes through the job life cycle (Celery eager, real library)."""

import base64
import json
import pickle
from decimal import Decimal
from uuid import uuid4

import pytest
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from accounts.services import user_claim_query_slot
from budgets.models import Budget, LedgerEntry
from queries.models import Job, QueryArchive

pytestmark = pytest.mark.django_db

FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
ACCOUNTANT = "_dpl_instance:BudgetAccountant"
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


def _pipeline(*steps, version="0.6.7", module="diffprivlib"):
    return json.dumps({"module": module, "version": version, "pipeline": list(steps or (SCALER, LOGISTIC))})


def _body(**overrides):
    return {"dataset_name": "PENGUIN", "diffprivlib_json": _pipeline(), "feature_columns": FEATURES,
            "target_columns": ["species"], "test_size": 0.2, "test_train_split_seed": 1, "imputer_strategy": "drop",
            **overrides}  # fmt: skip


def _status(api, response):
    assert response.status_code == 202, response.content
    return api.get(f"/api/status/{response.json()['uid']}")


def _model(result):
    return pickle.loads(base64.b64decode(result["model"]))


def _assert_nothing_charged_and_slot_free(alice):
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert not QueryArchive.objects.exists()
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


def test_cost_estimate_reports_the_accountant_total_and_charges_nothing(alice, alice_api, submit):
    status = _status(alice_api, submit(alice_api, "estimate_diffprivlib_cost", _body(target_columns=[""])))

    # The client sends [""] for targets left out of a cost call: none, and a classifier needs one.
    assert status.status_code == 400
    assert "LogisticRegression needs exactly one target column" in status.json()["error"]["message"]
    status = _status(alice_api, submit(alice_api, "estimate_diffprivlib_cost", _body()))
    assert status.status_code == 200
    assert status.json()["result"] == {"epsilon": 1.5, "delta": 0.0}
    _assert_nothing_charged_and_slot_free(alice)


def test_dummy_query_fits_on_dummy_data_and_charges_nothing(alice, alice_api, submit):
    accepted = submit(alice_api, "dummy_diffprivlib_query", _body(dummy_nb_rows=200, dummy_seed=3))

    response = _status(alice_api, accepted).json()["result"]

    assert (response["epsilon"], response["delta"], response["requested_by"]) == (1.5, 0.0, "Alice")
    assert response["result"]["type"] == "diffprivlib"
    check_is_fitted(_model(response["result"]))
    _assert_nothing_charged_and_slot_free(alice)


def test_real_query_charges_its_cost_exactly_and_archives_the_model(alice, alice_api, penguin, submit):
    response = _status(alice_api, submit(alice_api, "diffprivlib_query", _body())).json()["result"]

    assert (response["epsilon"], response["delta"]) == (1.5, 0.0)
    assert 0.0 <= response["result"]["score"] <= 1.0
    model = _model(response["result"])
    assert isinstance(model, Pipeline)
    check_is_fitted(model)
    budget = Budget.objects.get(user=alice, dataset=penguin)
    assert (budget.spent_epsilon, budget.spent_delta) == (Decimal("1.5"), Decimal(0))
    spent = alice_api.post("/api/get_total_spent_budget", {"dataset_name": "PENGUIN"}, format="json").json()
    assert spent == {"total_spent_epsilon": 1.5, "total_spent_delta": 0.0}
    [record] = alice_api.post("/api/get_previous_queries", {"dataset_name": "PENGUIN"}, format="json").json()[
        "previous_queries"
    ]
    assert record["dp_library"] == "diffprivlib"
    assert record["client_input"]["diffprivlib_json"] == _pipeline()
    assert record["response"] == response
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(diffprivlib_json=_pipeline({**SCALER, "type": "_dpl_type:os.system"})), "not an allowed diffprivlib"),
        (_body(diffprivlib_json=_pipeline({**SCALER, "type": "builtins.eval"})), "not an allowed diffprivlib model"),
        (
            _body(diffprivlib_json=_pipeline({**SCALER, "type": "_dpl_type:sklearn.preprocessing.StandardScaler"})),
            "not an allowed diffprivlib model",
        ),
        (_body(diffprivlib_json=_pipeline({**SCALER, "type": "_dpl_type:BudgetAccountant"})), "not an allowed"),
        (_body(diffprivlib_json=_pipeline(version="0.7.0")), "accepts pipelines of diffprivlib 0.6.x"),
        (_body(diffprivlib_json=_pipeline(module="sklearn")), "JSON 'module' must be 'diffprivlib'"),
        (
            _body(diffprivlib_json=_pipeline({**SCALER, "params": {"epsilon": "_dpl_instance:os.system"}})),
            "only the accountant may name a diffprivlib object",
        ),
        (_body(imputer_strategy="knn"), "Imputation strategy knn not supported."),
        (_body(target_columns=["species", "bill_length_mm"]), "are both feature and target columns"),
        (_body(feature_columns=["beak_colour"]), "Columns not found in the dataset"),
    ],
)
def test_hostile_or_invalid_pipelines_fail_400_charge_nothing_and_release_the_lock(
    alice, alice_api, submit, body, message
):
    status = _status(alice_api, submit(alice_api, "diffprivlib_query", body))

    assert status.status_code == 400
    assert status.json()["status"] == "failed"
    assert status.json()["error"]["type"] == "InvalidQueryException"
    assert message in status.json()["error"]["message"]
    _assert_nothing_charged_and_slot_free(alice)


def test_privacy_leak_warning_fails_422_and_charges_nothing(alice, alice_api, submit):
    leaky = _pipeline(SCALER, {**LOGISTIC, "params": {**LOGISTIC["params"], "data_norm": None}})

    status = _status(alice_api, submit(alice_api, "diffprivlib_query", _body(diffprivlib_json=leaky)))

    assert status.status_code == 422
    error = status.json()["error"]
    assert (error["type"], error["library"]) == ("ExternalLibraryException", "diffprivlib")
    assert error["message"].startswith("PrivacyLeakWarning: ")
    assert error["message"].endswith("PrivacyLeakWarning is a blocker.")
    _assert_nothing_charged_and_slot_free(alice)


def test_over_budget_query_is_refused_before_the_fit(alice, alice_api, submit):
    greedy = _pipeline(SCALER, {**LOGISTIC, "params": {**LOGISTIC["params"], "epsilon": 9.6}})  # 10.1 > 10

    status = _status(alice_api, submit(alice_api, "diffprivlib_query", _body(diffprivlib_json=greedy)))

    assert status.status_code == 400
    assert status.json()["error"]["message"].startswith("Not enough budget for this query epsilon remaining 10.0")
    _assert_nothing_charged_and_slot_free(alice)


def test_query_while_another_runs_is_refused(alice, alice_api, submit):
    user_claim_query_slot(user=alice, job_uid=uuid4())

    status = _status(alice_api, submit(alice_api, "diffprivlib_query", _body()))

    assert status.status_code == 403
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"test_size": 0}, "test_size"),
        ({"test_size": 1.0}, "test_size"),
        ({"test_train_split_seed": "one"}, "test_train_split_seed"),
        ({"feature_columns": "bill_length_mm"}, "feature_columns"),
        ({"target_columns": "species"}, "target_columns"),
        ({"diffprivlib_json": {"module": "diffprivlib"}}, "diffprivlib_json"),
        ({"imputer_strategy": None}, "imputer_strategy"),
    ],
)
def test_invalid_fields_are_400_before_any_job(alice_api, submit, override, field):
    response = submit(alice_api, "diffprivlib_query", _body(**override))

    assert response.status_code == 400
    assert response.json()["type"] == "InvalidQueryException"
    assert field in response.json()["message"]
    assert not Job.objects.exists()


def test_a_50_mb_body_is_refused_with_a_lomas_400_before_any_job(alice, alice_api, submit):
    huge = _body(diffprivlib_json=_pipeline(SCALER, {**LOGISTIC, "name": "x" * 50_000_000}))

    response = submit(alice_api, "diffprivlib_query", huge)

    assert response.status_code == 400
    assert response.json()["type"] == "InvalidQueryException"
    assert "too large" in response.json()["message"]
    assert not Job.objects.exists()
    _assert_nothing_charged_and_slot_free(alice)
