"""SmartNoise-Synth over HTTP with a real OIDC token, against a live server (PostgreSQL, Redis,
a Celery worker): cost, dummy and real queries on PENGUIN, each real query charged exactly."""

import subprocess
import sys
from decimal import Decimal

import pandas as pd
import psycopg
import pytest

USER, PASSWORD = "synth_researcher", "synth-researcher-pw"
FEW_COLUMNS = ["species", "island", "sex", "flipper_length_mm"]
CATEGORIES = {"species": {"Adelie", "Chinstrap", "Gentoo"}, "island": {"Torgersen", "Biscoe", "Dream"},
              "sex": {"MALE", "FEMALE"}}  # fmt: skip
BOUNDS = {"bill_length_mm": (30.0, 65.0), "bill_depth_mm": (13.0, 23.0), "flipper_length_mm": (150.0, 250.0),
          "body_mass_g": (2000.0, 7000.0)}  # fmt: skip
SYNTHS = {
    "mwem": {"select_cols": FEW_COLUMNS, "synth_params": {}},
    "mst": {"select_cols": FEW_COLUMNS, "synth_params": {}},
    "aim": {"select_cols": FEW_COLUMNS, "synth_params": {}},
    "dpctgan": {"select_cols": [], "synth_params": {"epochs": 2, "batch_size": 50}},
}
SAMPLE_IN_FRESH_PROCESS = (
    "import base64, pickle, sys; model = pickle.loads(base64.b64decode(sys.stdin.read())); print(len(model.sample(5)))"
)


@pytest.fixture(scope="module")
def token(live_stack):
    """A researcher of their own with a PENGUIN budget, and their access token."""
    live_stack.add_researchers({USER: (PASSWORD, {"PENGUIN": (20, 0.01)})})
    return live_stack.token(USER, PASSWORD)


def _body(synth_name, **overrides):
    delta = None if synth_name == "mwem" else 1e-5  # mwem is pure ε-DP: a delta is refused
    return {"dataset_name": "PENGUIN", "synth_name": synth_name, "epsilon": 1.0, "delta": delta, "nullable": False,
            "constraints": "", "return_model": False, "condition": "", "nb_samples": 25,
            **SYNTHS.get(synth_name, SYNTHS["mwem"]), **overrides}  # fmt: skip


def _run(live_stack, token, route, body):
    accepted = live_stack.post(route, token, body)
    assert accepted.status_code == 202, accepted.text
    done = live_stack.wait_job(accepted.json()["uid"], token, timeout=300)
    assert done.status_code == 200, done.text
    return accepted.json()["uid"], done.json()["result"]


def _assert_samples_within_metadata(result, columns):
    assert result["type"] == "sn_synth_samples"
    samples = pd.DataFrame.from_dict(result["df_samples"], orient="tight")
    assert list(samples.columns) == columns
    assert len(samples) == 25
    for name in columns:
        values = [value for value in samples[name] if value != ""]
        if name in CATEGORIES:
            assert set(values) <= CATEGORIES[name], name
        else:
            assert all(BOUNDS[name][0] <= value <= BOUNDS[name][1] for value in values), name


def _ledger_entry(live_stack, job_uid):
    with psycopg.connect(live_stack.env["DATABASE_URL"]) as conn:
        return conn.execute("SELECT epsilon, delta FROM budgets_ledgerentry WHERE job_uid = %s", [job_uid]).fetchone()


@pytest.mark.slow
@pytest.mark.parametrize("synth_name", list(SYNTHS))
def test_cost_dummy_and_real_query_over_http(live_stack, token, synth_name):
    columns = SYNTHS[synth_name]["select_cols"] or ["species", "island", *BOUNDS, "sex"]
    # cost: fitted on the real data, charges nothing
    _, cost = _run(live_stack, token, "estimate_smartnoise_synth_cost", _body(synth_name))
    assert cost["epsilon"] > 0
    # dummy: samples of a synthesizer fitted on dummy rows
    _, dummy = _run(
        live_stack, token, "dummy_smartnoise_synth_query", _body(synth_name, dummy_nb_rows=200, dummy_seed=3)
    )
    _assert_samples_within_metadata(dummy["result"], columns)
    # real: samples, charged exactly the reported cost
    job_uid, real = _run(live_stack, token, "smartnoise_synth_query", _body(synth_name))
    assert real["requested_by"] == USER
    _assert_samples_within_metadata(real["result"], columns)
    assert _ledger_entry(live_stack, job_uid) == (Decimal(repr(real["epsilon"])), Decimal(repr(real["delta"])))
    assert (cost["epsilon"], cost["delta"]) == (real["epsilon"], real["delta"])  # the accounting is deterministic


@pytest.mark.slow
@pytest.mark.parametrize("synth_name", ["mwem", "dpctgan"])
def test_returned_model_samples_in_a_fresh_process(live_stack, token, synth_name):
    job_uid, real = _run(live_stack, token, "smartnoise_synth_query", _body(synth_name, return_model=True))
    assert real["result"]["type"] == "smartnoise_synth"
    assert _ledger_entry(live_stack, job_uid) == (Decimal(repr(real["epsilon"])), Decimal(repr(real["delta"])))
    done = subprocess.run(
        [sys.executable, "-c", SAMPLE_IN_FRESH_PROCESS], input=real["result"]["model"], capture_output=True,
        text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "5"


def test_job_shows_in_progress_while_fitting_and_bad_inputs_fail_with_their_status(live_stack, token):
    accepted = live_stack.post("smartnoise_synth_query", token, _body("aim"))
    assert accepted.status_code == 202
    assert live_stack.get(f"status/{accepted.json()['uid']}", token).json()["status"] == "in_progress"
    live_stack.wait_job(accepted.json()["uid"], token, timeout=600)
    for body, status_code, error_type in [
        (_body("pacsynth"), 400, "InvalidQueryException"),
        (_body("mst", return_model=True), 400, "InvalidQueryException"),
        (_body("mwem", select_cols=["beak"]), 400, "InvalidQueryException"),
        (_body("mwem", synth_params={"seed": 1}), 400, "InvalidQueryException"),
        (_body("pategan"), 422, "ExternalLibraryException"),
    ]:
        accepted = live_stack.post("smartnoise_synth_query", token, body)
        failed = live_stack.wait_job(accepted.json()["uid"], token)
        assert (failed.status_code, failed.json()["error"]["type"]) == (status_code, error_type), body
    refused = live_stack.post("smartnoise_synth_query", token, _body("mwem", nb_samples=10**6))
    assert (refused.status_code, refused.json()["type"]) == (400, "InvalidQueryException")
