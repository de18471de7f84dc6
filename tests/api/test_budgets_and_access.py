"""Budget routes and the user → dataset → access checks every dataset route makes."""

import pytest

pytestmark = pytest.mark.django_db

BUDGET_ROUTES = ["get_initial_budget", "get_total_spent_budget", "get_remaining_budget"]


def test_budget_routes_answer_the_three_figures(alice_api):
    assert alice_api.post("/api/get_initial_budget", {"dataset_name": "PENGUIN"}, format="json").json() == {
        "initial_epsilon": 10.0,
        "initial_delta": 0.005,
    }
    assert alice_api.post("/api/get_total_spent_budget", {"dataset_name": "PENGUIN"}, format="json").json() == {
        "total_spent_epsilon": 0.0,
        "total_spent_delta": 0.0,
    }
    assert alice_api.post("/api/get_remaining_budget", {"dataset_name": "PENGUIN"}, format="json").json() == {
        "remaining_epsilon": 10.0,
        "remaining_delta": 0.005,
    }


@pytest.mark.parametrize("route", [*BUDGET_ROUTES, "get_dataset_metadata", "get_previous_queries"])
def test_unknown_dataset_is_400(alice_api, route):
    response = alice_api.post(f"/api/{route}", {"dataset_name": "MOON"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "type": "InvalidQueryException",
        "message": "Dataset MOON does not exist. Please, verify the client object initialisation.",
    }


@pytest.mark.parametrize("route", [*BUDGET_ROUTES, "get_dataset_metadata", "get_previous_queries"])
def test_dataset_without_access_is_403(alice_api, iris, route):
    response = alice_api.post(f"/api/{route}", {"dataset_name": "IRIS"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"type": "UnauthorizedAccessException", "message": "Alice does not have access to IRIS."}


def test_account_without_lomas_profile_is_an_unknown_user(db, penguin):
    from rest_framework.test import APIClient

    from accounts.models import User

    operator = User.objects.create_user(username="operator", password="operator-password")
    client = APIClient()
    client.force_authenticate(user=operator)
    response = client.post("/api/get_initial_budget", {"dataset_name": "PENGUIN"}, format="json")
    assert response.status_code == 403
    assert response.json()["message"] == (
        "User operator does not exist. Please, verify the client object initialisation."
    )


def test_missing_dataset_name_is_400_naming_the_field(alice_api):
    response = alice_api.post("/api/get_initial_budget", {}, format="json")
    assert response.status_code == 400
    assert response.json()["type"] == "InvalidQueryException"
    assert "dataset_name" in response.json()["message"]


def test_malformed_json_is_400(alice_api):
    response = alice_api.post("/api/get_initial_budget", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "InvalidQueryException"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic YWxpY2U6YWxpY2U="])
def test_missing_or_invalid_token_is_403(alice, authorization):
    from rest_framework.test import APIClient

    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.post("/api/get_initial_budget", {"dataset_name": "PENGUIN"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"type": "UnauthorizedAccessException", "message": "Failed bearer token verification."}


def test_real_token_from_the_password_grant_works_with_user_name_or_email(alice, client):
    for username in ("Alice", "alice@example.com"):
        token = client.post(
            "/o/token/",
            {
                "grant_type": "password",
                "username": username,
                "password": "alice-password",
                "client_id": "lomas_client",
                "scope": "openid profile email offline_access",
            },
        )
        assert token.status_code == 200, token.content
        response = client.post(
            "/api/get_initial_budget",
            {"dataset_name": "PENGUIN"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}",
        )
        assert response.status_code == 200
        assert "refresh_token" in token.json()


def test_wrong_password_is_refused_by_the_token_endpoint(alice, client):
    response = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "Alice", "password": "wrong", "client_id": "lomas_client"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_discovery_lists_every_endpoint_the_client_validates(client):
    document = client.get("/o/.well-known/openid-configuration").json()
    for key in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "device_authorization_endpoint",
        "introspection_endpoint",
    ):
        assert document[key].startswith("http"), key


def test_live_health_and_admin_only_state(alice_api, admin_api, client):
    assert client.get("/api/live").json() == {"status": "alive"}
    assert client.get("/api/health").status_code == 200
    refused = alice_api.get("/api/state")
    assert refused.status_code == 403
    assert refused.json()["message"] == "Only admin users can query this endpoint."
    assert admin_api.get("/api/state").json() == {"state": "live"}
    config = admin_api.get("/api/config").json()["config"]
    assert "SECRET" not in str(config).upper()


def test_browsable_api_works_with_a_signed_in_session(alice, client):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b"Sign in to lomas" in page.content
    signed_in = client.post("/accounts/login/", {"username": "alice@example.com", "password": "alice-password"})
    assert signed_in.status_code == 302
    response = client.post(
        "/api/get_remaining_budget",
        {"dataset_name": "PENGUIN"},
        content_type="application/json",
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 200
    assert b"remaining_epsilon" in response.content
