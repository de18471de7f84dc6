"""Swagger at /api/docs: "Authorize" gets a token from this server's OAuth2, and the examples run on the demo."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from lomas.console.schema_examples import ADMIN_EXAMPLES, DEMO_DATASET

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashes(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def schema(db: None) -> dict[str, Any]:
    response = APIClient().get("/api/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _example(operation: dict[str, Any]) -> Any:
    return operation["requestBody"]["content"]["application/json"]["examples"][DEMO_DATASET]["value"]


def test_authorize_uses_the_password_grant_of_the_public_client(schema, alice):
    oauth2 = schema["components"]["securitySchemes"]["oauth2"]
    flow = oauth2["flows"]["password"]
    assert flow["tokenUrl"] == "/o/token/" and "openid" in flow["scopes"]
    assert schema["paths"]["/api/get_remaining_budget"]["post"]["security"][:2] == [{"bearer": []}, {"oauth2": []}]

    # what Swagger UI sends: the form of the password grant, the client id in a Basic header without secret
    token = Client().post(
        flow["tokenUrl"],
        {
            "grant_type": "password",
            "username": "Alice",
            "password": "alice-password",
            "scope": " ".join(flow["scopes"]),
        },
        HTTP_AUTHORIZATION="Basic bG9tYXNfY2xpZW50Og==",  # lomas_client:
    )
    assert token.status_code == 200
    bearer = f"Bearer {token.json()['access_token']}"
    answer = Client().post("/api/get_remaining_budget", _example(schema["paths"]["/api/get_remaining_budget"]["post"]),
                           content_type="application/json", HTTP_AUTHORIZATION=bearer)  # fmt: skip
    assert answer.status_code == 200 and answer.json()["remaining_epsilon"] == 10.0


def test_swagger_ui_is_configured_with_the_client_id(db):
    page = Client().get("/api/docs").content.decode()

    assert '"clientId": "lomas_client"' in page


def test_every_researcher_example_runs_on_the_demo_dataset(schema, alice, submit):
    from tests.conftest import api_client_for

    api = api_client_for(alice)
    posts = {path: item["post"] for path, item in schema["paths"].items() if "post" in item}
    researcher = {path: post for path, post in posts.items()
                  if "researcher" in post["tags"] or path.endswith(("_query", "_cost"))}  # fmt: skip
    assert len(researcher) == 18
    for path, operation in researcher.items():
        body = _example(operation)
        assert body["dataset_name"] == DEMO_DATASET and "string" not in str(body)
        answer = submit(api, path.removeprefix("/api/"), body)
        assert answer.status_code in (200, 202), (path, answer.content)
        if answer.status_code == 202:
            status = api.get(f"/api/status/{answer.json()['uid']}").json()
            assert (status["status"], status["error"]) == ("complete", None), path


def test_admin_examples_and_path_parameters_name_the_demo(schema, admin_user, demo_datasets):
    from accounts.services import user_create
    from budgets.services import budget_grant
    from datasets.models import Dataset
    from tests.conftest import api_client_for

    researcher = user_create(username="Dr.Antartica", password="dr.antartica")
    for name in ("PENGUIN", "BIRTHDAYS"):
        budget_grant(user=researcher, dataset=Dataset.objects.get(name=name), epsilon=5, delta=1e-4)
    api = api_client_for(admin_user)
    for (path, method), body in ADMIN_EXAMPLES.items():
        operation = schema["paths"][path][method]
        assert _example(operation) == body
        parameters = {p["name"]: p["example"] for p in operation.get("parameters", []) if p["in"] == "path"}
        answer = getattr(api, method)(path.format(**parameters), body, format="json")
        assert answer.status_code == 200, (path, answer.content)
    assert schema["paths"]["/api/dataset/{dataset_name}"]["get"]["parameters"][0]["example"] == DEMO_DATASET
