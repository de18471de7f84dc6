"""Strict input: JSON bodies only, not too deep, numbers that are numbers, δ below 1, job uids that are UUIDs."""

import json
from uuid import uuid4

import pytest

from budgets.models import LedgerEntry
from lomas.requests import MAX_JSON_DEPTH
from queries.models import Job

pytestmark = pytest.mark.django_db

SQL = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
       "mechanisms": {}, "postprocess": True}  # fmt: skip
OPENDP = {"dataset_name": "PENGUIN", "opendp_json": "e30=", "epsilon": None, "delta": 1e-6, "rho": 0.5,
          "approx_zcdp": False}  # fmt: skip
SYNTH = {"dataset_name": "PENGUIN", "synth_name": "mwem", "epsilon": 1.0, "delta": None, "select_cols": ["species"],
         "synth_params": {}, "nullable": False, "constraints": "", "return_model": False, "condition": "",
         "nb_samples": 10}  # fmt: skip


@pytest.mark.parametrize("body", ["[" * 100_000, "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)])
def test_json_nested_too_deep_is_400(alice_api, body):
    response = alice_api.post("/api/get_initial_budget", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "type": "InvalidQueryException",
        "message": f"Invalid request: the JSON body is nested more than {MAX_JSON_DEPTH} levels deep.",
    }


def test_json_nested_as_deep_as_allowed_is_read(alice_api):
    nested = json.dumps({"dataset_name": "PENGUIN", "extra": json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * 63)})
    response = alice_api.post("/api/get_initial_budget", nested, content_type="application/json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("estimate_smartnoise_sql_cost", {**SQL, "epsilon": True}, "epsilon"),
        ("estimate_smartnoise_sql_cost", {**SQL, "epsilon": "0.1"}, "epsilon"),
        ("estimate_smartnoise_sql_cost", {**SQL, "delta": False}, "delta"),
        ("estimate_smartnoise_sql_cost", {**SQL, "delta": "1e-5"}, "delta"),
        ("estimate_opendp_cost", {**OPENDP, "rho": True}, "rho"),
        ("estimate_opendp_cost", {**OPENDP, "rho": "0.5"}, "rho"),
        ("estimate_opendp_cost", {**OPENDP, "rho": None, "epsilon": "1"}, "epsilon"),
        ("estimate_smartnoise_synth_cost", {**SYNTH, "epsilon": True}, "epsilon"),
    ],
)
def test_budget_figures_must_be_json_numbers(alice_api, submit, route, body, field):
    response = submit(alice_api, route, body)
    assert response.status_code == 400
    message = f"Invalid request: {field}: A number is required."
    assert response.json() == {"type": "InvalidQueryException", "message": message}
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("smartnoise_sql_query", {**SQL, "postprocess": 1}, "postprocess"),
        ("smartnoise_sql_query", {**SQL, "postprocess": "true"}, "postprocess"),
        ("estimate_smartnoise_sql_cost", {**SQL, "query_str": 0}, "query_str"),
        ("estimate_smartnoise_sql_cost", {**SQL, "mechanisms": {"count": 1}}, "mechanisms"),
        ("estimate_opendp_cost", {**OPENDP, "approx_zcdp": 0}, "approx_zcdp"),
        ("smartnoise_synth_query", {**SYNTH, "condition": 0}, "condition"),
        ("estimate_smartnoise_synth_cost", {**SYNTH, "nullable": "false"}, "nullable"),
    ],
)
def test_flags_and_texts_must_be_json_booleans_and_strings(alice_api, submit, route, body, field):
    response = submit(alice_api, route, body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"Invalid request: {field}")
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("smartnoise_sql_query", {**SQL, "delta": 1}),
        ("smartnoise_sql_query", {**SQL, "delta": 1.5}),
        ("opendp_query", {**OPENDP, "delta": 1.0}),
        ("smartnoise_synth_query", {**SYNTH, "synth_name": "aim", "delta": 1.0}),
    ],
)
def test_delta_of_one_or_more_is_400(alice_api, submit, route, body):
    response = submit(alice_api, route, body)
    assert response.status_code == 400
    assert response.json() == {
        "type": "InvalidQueryException",
        "message": "Invalid request: delta: Ensure this value is less than 1.",
    }
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()


def test_integer_epsilon_is_a_number(alice_api, submit):
    response = submit(alice_api, "estimate_smartnoise_sql_cost", {**SQL, "epsilon": 1, "delta": 0})
    assert response.status_code == 202, response.content


MULTIPART = '--B\r\nContent-Disposition: form-data; name="dataset_name"\r\n\r\nPENGUIN\r\n--B--\r\n'


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "dataset_name=PENGUIN"),
        ("multipart/form-data; boundary=B", MULTIPART),
        ("text/plain", '{"dataset_name": "PENGUIN"}'),
    ],
)
def test_a_body_that_is_not_json_is_415(alice_api, content_type, body):
    response = alice_api.post("/api/get_initial_budget", body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["type"] == "InvalidQueryException"
    assert response.json()["message"].startswith(f'Invalid request: Unsupported media type "{content_type}"')


def test_a_dp_submission_that_is_not_json_is_415_and_makes_no_job(alice_api):
    form = {key: value for key, value in SQL.items() if key != "mechanisms"}
    response = alice_api.post("/api/smartnoise_sql_query", form)  # APIClient's default: multipart
    assert response.status_code == 415
    assert not Job.objects.exists()


def test_the_browsable_api_posts_json_from_a_signed_in_browser(alice, client):
    assert client.post("/accounts/login/", {"username": "Alice", "password": "alice-password"}).status_code == 302
    page = client.get("/api/get_remaining_budget", HTTP_ACCEPT="text/html")
    # The page's raw-data form offers JSON, the one body the route takes; its script posts it as such.
    assert b'<option value="application/json"' in page.content
    assert b"application/x-www-form-urlencoded" not in page.content
    body = {"dataset_name": "PENGUIN"}
    response = client.post("/api/get_remaining_budget", body, content_type="application/json", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"remaining_epsilon" in response.content


@pytest.mark.parametrize("uid", ["not-a-uid", "1234", "x" * 36])
def test_malformed_job_uid_is_422(alice_api, uid):
    response = alice_api.get(f"/api/status/{uid}")
    assert response.status_code == 422
    assert response.json() == {"type": "InvalidQueryException", "message": f"Invalid job uid: {uid!r} is not a UUID."}


def test_unknown_well_formed_job_uid_is_still_404(alice_api):
    response = alice_api.get(f"/api/status/{uuid4()}")
    assert response.status_code == 404
