"""The device authorization grant (RFC 8628) for lomas_client, through the HTTP routes."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_device_grant_model

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPES = "openid profile email offline_access"
FORM = "application/x-www-form-urlencoded"  # as OAuth clients send it


def form_post(client: Client, path: str, data: dict[str, str]) -> Any:
    return client.post(path, urlencode(data), content_type=FORM)


def start_device_flow(client: Client, client_id: str = "lomas_client") -> dict[str, Any]:
    response = form_post(client, "/o/device-authorization/", {"client_id": client_id, "scope": SCOPES})
    assert response.status_code == 200, response.content
    return response.json()


def poll(client: Client, device_code: str, client_id: str = "lomas_client") -> Any:
    return form_post(
        client, "/o/token/", {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}
    )


def approve(browser: Client, user_code: str, action: str = "accept") -> Any:
    """What a signed-in user does on the verification pages: enter the code, then approve or deny."""
    entered = browser.post("/o/device/", {"user_code": user_code})
    assert entered.status_code == 302, entered.content
    return browser.post(entered["Location"], {"action": action}, follow=True)


def wait_interval(device_code: str) -> None:
    """As if the client had waited its polling interval since its last poll."""
    grant = get_device_grant_model().objects.get(device_code=device_code)
    type(grant).objects.filter(pk=grant.pk).update(last_checked=grant.last_checked - timedelta(seconds=grant.interval))


@pytest.fixture
def browser(alice: Any) -> Client:
    browser = Client()
    browser.force_login(alice)
    return browser


def test_device_authorization_answers_absolute_verification_uris(db, client):
    # when
    data = start_device_flow(client)
    # then
    assert data["verification_uri"] == "http://testserver/o/device/"
    assert data["verification_uri_complete"] == f"http://testserver/o/device/?user_code={data['user_code']}"
    assert data["interval"] == 5
    assert data["expires_in"] == 600
    assert data["device_code"] and data["user_code"]


def test_polling_before_approval_is_pending_and_too_fast_polling_slows_down(db, client):
    # given
    data = start_device_flow(client)
    # when: the first poll comes at once, the second without waiting, the third after the longer interval
    first = poll(client, data["device_code"])
    second = poll(client, data["device_code"])
    wait_interval(data["device_code"])
    third = poll(client, data["device_code"])
    # then
    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")
    assert (second.status_code, second.json()["error"]) == (400, "slow_down")
    assert get_device_grant_model().objects.get(device_code=data["device_code"]).interval == 10
    assert third.json()["error"] == "authorization_pending"


def test_the_verification_page_asks_to_sign_in_first(db, client):
    data = start_device_flow(client)
    page = client.get(data["verification_uri_complete"])
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/login/?next=/o/device/")


def test_approved_device_gets_tokens_once_and_they_work_on_the_api(alice, browser, client):
    # given
    data = start_device_flow(client)
    form = browser.get(f"/o/device/?user_code={data['user_code']}")
    assert data["user_code"] in form.content.decode()
    # when
    status_page = approve(browser, data["user_code"])
    token = poll(client, data["device_code"])
    replay = poll(client, data["device_code"])
    # then
    assert "Approved" in status_page.content.decode()
    assert token.status_code == 200, token.content
    tokens = token.json()
    assert {"access_token", "refresh_token", "expires_in"} <= set(tokens)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    answer = client.post(
        "/api/get_initial_budget",
        {"dataset_name": "PENGUIN"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}",
    )
    assert answer.status_code == 200
    assert answer.json() == {"initial_epsilon": 10.0, "initial_delta": 0.005}


def test_refresh_token_of_a_device_sign_in_gives_a_new_access_token(alice, browser, client):
    # given
    data = start_device_flow(client)
    approve(browser, data["user_code"])
    tokens = poll(client, data["device_code"]).json()
    # when
    refreshed = form_post(
        client,
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "lomas_client"},
    )
    # then
    assert refreshed.status_code == 200, refreshed.content
    assert refreshed.json()["access_token"] != tokens["access_token"]
    answer = client.post(
        "/api/get_remaining_budget",
        {"dataset_name": "PENGUIN"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access_token']}",
    )
    assert answer.status_code == 200


def test_denied_device_gets_access_denied(alice, browser, client):
    data = start_device_flow(client)
    status_page = approve(browser, data["user_code"], action="deny")
    denied = poll(client, data["device_code"])
    assert "Denied" in status_page.content.decode()
    assert (denied.status_code, denied.json()["error"]) == (400, "access_denied")


def test_expired_device_code_gets_expired_token_and_its_code_is_refused(alice, browser, client, settings):
    # given
    settings.LOMAS_DEVICE_CODE_EXPIRE_SECONDS = 0
    data = start_device_flow(client)
    # when
    expired = poll(client, data["device_code"])
    entered = browser.post("/o/device/", {"user_code": data["user_code"]})
    # then
    assert (expired.status_code, expired.json()["error"]) == (400, "expired_token")
    assert entered.status_code == 200
    assert "Expired user code" in entered.content.decode()


def test_user_code_is_read_in_any_case_with_spaces_or_dashes(alice, browser, client):
    data = start_device_flow(client)
    typed = f"{data['user_code'][:4].lower()}-{data['user_code'][4:].lower()} "
    approve(browser, typed)
    assert poll(client, data["device_code"]).status_code == 200


def test_device_code_of_another_client_or_unknown_is_invalid_grant(alice, client):
    from oauth2_provider.models import get_application_model

    get_application_model().objects.create(
        client_id="other", client_type="public", authorization_grant_type=DEVICE_GRANT, name="other"
    )
    data = start_device_flow(client)
    stolen = poll(client, data["device_code"], client_id="other")
    unknown = poll(client, "not-a-device-code")
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")


def test_a_grant_left_pending_past_its_lifetime_is_expired_when_polled(db, client):
    data = start_device_flow(client)
    get_device_grant_model().objects.filter(device_code=data["device_code"]).update(expires=timezone.now())
    assert poll(client, data["device_code"]).json()["error"] == "expired_token"


def test_device_code_poll_without_a_device_code_is_invalid_request(db, client):
    answer = form_post(client, "/o/token/", {"grant_type": DEVICE_GRANT, "client_id": "lomas_client"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
