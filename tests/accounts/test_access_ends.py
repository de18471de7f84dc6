"""Access that ends: a deactivated user's tokens stop working and are revoked; introspection needs a client."""

import base64

import pytest
from oauth2_provider.models import AccessToken, Application, RefreshToken
from rest_framework.test import APIClient

from accounts.models import AuditEntry, User
from accounts.services import user_change_fields

from .test_admin_users import change_user

pytestmark = pytest.mark.django_db

BAD_TOKEN = {"type": "UnauthorizedAccessException", "message": "Failed bearer token verification."}
DEACTIVATED = {"type": "UnauthorizedAccessException", "message": "User Alice is deactivated."}


def password_grant(client, username="Alice", password="alice-password"):
    return client.post(
        "/o/token/",
        {"grant_type": "password", "username": username, "password": password, "client_id": "lomas_client",
         "scope": "openid profile email offline_access"},
    )  # fmt: skip


def refresh_grant(client, refresh_token):
    return client.post(
        "/o/token/", {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "lomas_client"}
    )


def remaining_budget(access_token):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return api.post("/api/get_remaining_budget", {"dataset_name": "PENGUIN"}, format="json")


@pytest.fixture
def tokens(alice, client):
    answer = password_grant(client)
    assert answer.status_code == 200, answer.content
    assert remaining_budget(answer.json()["access_token"]).status_code == 200
    return answer.json()


def test_deactivation_by_the_service_revokes_every_token_and_refuses_the_old_bearer(alice, admin_user, tokens, client):
    # when
    user_change_fields(actor=admin_user, user=alice, values={"is_active": False})
    # then
    assert not AccessToken.objects.filter(user=alice).exists()
    assert not RefreshToken.objects.filter(user=alice).exists()
    answer = remaining_budget(tokens["access_token"])
    assert (answer.status_code, answer.json()) == (403, BAD_TOKEN)
    refreshed = refresh_grant(client, tokens["refresh_token"])
    assert (refreshed.status_code, refreshed.json()["error"]) == (400, "invalid_grant")
    entry = AuditEntry.objects.get(action="user.update", target="Alice")
    assert entry.details["is_active"] == {"old": True, "new": False}
    assert entry.details["tokens_revoked"] >= 2


def test_deactivation_in_django_admin_revokes_the_tokens(alice, tokens, admin_client):
    response = change_user(admin_client, alice, is_active="")
    assert response.status_code == 302, response.content[:2000]
    assert not User.objects.get(pk=alice.pk).is_active
    assert not AccessToken.objects.filter(user=alice).exists()
    assert remaining_budget(tokens["access_token"]).status_code == 403


def test_any_save_of_an_inactive_user_revokes_the_tokens(alice, tokens):
    alice.is_active = False
    alice.save()
    assert not AccessToken.objects.filter(user=alice).exists()
    assert not RefreshToken.objects.filter(user=alice).exists()


def test_token_of_a_user_deactivated_behind_the_services_back_is_refused_on_every_route(alice, tokens, client):
    # given: deactivated by a bulk update (no save, no signal): the tokens are still in the database
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert AccessToken.objects.filter(user=alice).exists()
    # then: every route that reads a bearer refuses it, and no refresh is granted
    for method, path in [("post", "/api/get_remaining_budget"), ("get", "/api/status/x"), ("get", "/api/users")]:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
        answer = getattr(api, method)(path, {"dataset_name": "PENGUIN"}, format="json")
        assert (answer.status_code, answer.json()) == (403, DEACTIVATED), path
    refreshed = refresh_grant(client, tokens["refresh_token"])
    assert (refreshed.status_code, refreshed.json()["error"]) == (400, "invalid_grant")
    assert password_grant(client).status_code == 400


def test_reactivated_user_signs_in_again(alice, admin_user, tokens, client):
    user_change_fields(actor=admin_user, user=alice, values={"is_active": False})
    user_change_fields(actor=admin_user, user=alice, values={"is_active": True})
    answer = password_grant(client)
    assert answer.status_code == 200
    assert remaining_budget(answer.json()["access_token"]).status_code == 200


def _introspect(client, token, **extra):
    return client.post("/o/introspect/", {"token": token, **extra.pop("data", {})}, **extra)


def test_introspection_is_refused_to_the_public_client(tokens, client):
    answer = _introspect(client, tokens["access_token"], data={"client_id": "lomas_client"})
    assert answer.status_code == 403
    assert b"Alice" not in answer.content
    assert _introspect(client, tokens["access_token"]).status_code == 403


def test_introspection_answers_a_confidential_client_that_authenticates(tokens, client):
    Application.objects.create(
        client_id="resource-server",
        client_secret="resource-secret",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        name="resource server",
    )
    wrong = base64.b64encode(b"resource-server:wrong").decode()
    assert _introspect(client, tokens["access_token"], HTTP_AUTHORIZATION=f"Basic {wrong}").status_code == 403
    right = base64.b64encode(b"resource-server:resource-secret").decode()
    answer = _introspect(client, tokens["access_token"], HTTP_AUTHORIZATION=f"Basic {right}")
    assert answer.status_code == 200
    assert answer.json()["active"] is True
    assert answer.json()["username"] == "Alice"


def test_introspection_answers_a_bearer_with_the_introspection_scope(alice, tokens, client):
    AccessToken.objects.filter(token_checksum__isnull=False).update(scope="introspection")
    answer = _introspect(client, tokens["access_token"], HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert answer.status_code == 200
    assert answer.json()["active"] is True
