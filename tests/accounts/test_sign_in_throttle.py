"""Password guessing is throttled per user name and per client address: the token endpoint and the sign-in pages."""

import pytest
from django.test import Client

from lomas import rate_limit

pytestmark = pytest.mark.django_db

LIMIT = 10


@pytest.fixture(autouse=True)
def _fast_password_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for the cool-down (the cache keeps its own time, far longer than these tests)."""
    now = [1_000_000.0]
    monkeypatch.setattr(rate_limit, "clock", lambda: now[0])
    return now


def password_grant(client, password, username="Alice", **extra):
    return client.post(
        "/o/token/",
        {"grant_type": "password", "username": username, "password": password, "client_id": "lomas_client"},
        **extra,
    )


def test_eleventh_attempt_after_ten_wrong_passwords_is_429_even_with_the_right_password(alice, client, clock):
    for _ in range(LIMIT):
        assert password_grant(client, "wrong").status_code == 400
    refused = password_grant(client, "alice-password")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "300"
    assert refused.json() == {
        "error": "temporarily_unavailable",
        "error_description": rate_limit.SIGN_IN_THROTTLED.format(retry=300),
    }
    # the cool-down runs out
    clock[0] += 299
    assert password_grant(client, "alice-password")["Retry-After"] == "1"
    clock[0] += 1
    assert password_grant(client, "alice-password").status_code == 200


def test_nine_failures_then_the_right_password_signs_in(alice, client, clock):
    for _ in range(LIMIT - 1):
        assert password_grant(client, "wrong").status_code == 400
    assert password_grant(client, "alice-password").status_code == 200


def test_the_user_name_is_throttled_from_every_address(alice, clock):
    for index in range(LIMIT):
        assert password_grant(Client(REMOTE_ADDR=f"192.0.2.{index}"), "wrong", username="alice").status_code == 400
    assert password_grant(Client(REMOTE_ADDR="198.51.100.1"), "alice-password").status_code == 429


def test_one_address_guessing_many_names_is_throttled_and_others_are_not(alice, bob, clock):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for index in range(LIMIT):
        assert password_grant(attacker, "wrong", username=f"user{index}").status_code == 400
    assert password_grant(attacker, "bob-password", username="Bob").status_code == 429
    assert password_grant(Client(REMOTE_ADDR="198.51.100.1"), "bob-password", username="Bob").status_code == 200


def test_behind_a_proxy_the_forwarded_address_is_the_clients(alice, bob, settings, clock):
    settings.LOMAS_NUM_PROXIES = 1
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for index in range(LIMIT):
        forwarded = {"HTTP_X_FORWARDED_FOR": f"spoofed, 203.0.113.{index}"}
        assert password_grant(proxy, "wrong", username=f"user{index}", **forwarded).status_code == 400
    # ten clients behind the same proxy: none of them is throttled for the others
    assert password_grant(proxy, "bob-password", username="Bob", HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 200


@pytest.mark.parametrize("page", ["/accounts/login/", "/admin/login/"])
def test_sign_in_pages_are_throttled_the_same_way(admin_user, client, clock, page):
    for _ in range(LIMIT):
        failed = client.post(page, {"username": "admin", "password": "wrong"})
        assert failed.status_code == 200  # the form again, with its error
    refused = client.post(page, {"username": "admin", "password": "admin-password"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "300"
    assert refused.content.decode() == rate_limit.SIGN_IN_THROTTLED.format(retry=300)
    clock[0] += 300
    assert client.post(page, {"username": "admin", "password": "admin-password"}).status_code == 302


def test_the_token_endpoint_and_the_pages_share_the_count(admin_user, client, clock):
    for _ in range(LIMIT):
        password_grant(client, "wrong", username="admin")
    assert client.post("/admin/login/", {"username": "admin", "password": "admin-password"}).status_code == 429
