"""The bootstrap identity (spec §7): the configured secret acts as a lomas admin until DELETE /bootstrap."""

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEntry, BootstrapState, User
from lomas.errors import ADMIN_ONLY, BAD_TOKEN, UNKNOWN_USER

pytestmark = pytest.mark.django_db

SECRET = "bootstrap-secret-for-the-tests-42"
GONE = {"type": "UnauthorizedAccessException", "message": "The bootstrap identity is disabled."}


@pytest.fixture
def secret(settings):
    settings.LOMAS_BOOTSTRAP_SECRET = SECRET
    return SECRET


def bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_the_secret_acts_as_an_admin_and_every_use_is_audited(secret):
    boot = bearer(secret)
    assert boot.get("/api/bootstrap").json() is None
    created = boot.post("/api/users", {"id": {"name": "Carol", "email": "carol@example.com"}}, format="json")
    assert created.status_code == 200, created.content
    assert User.objects.filter(username="Carol").exists()
    assert AuditEntry.objects.get(action="user.add").actor_name == "bootstrap"
    uses = AuditEntry.objects.filter(action="bootstrap.use", actor_name="bootstrap")
    assert [(entry.target, entry.details) for entry in uses] == [
        ("/api/bootstrap", {"method": "GET"}),
        ("/api/users", {"method": "POST"}),
    ]


def test_delete_disables_it_for_good_then_410_for_get_and_for_the_bearer(secret, admin_api):
    boot = bearer(secret)
    assert boot.get("/api/bootstrap").status_code == 200
    disabled = boot.delete("/api/bootstrap")
    assert (disabled.status_code, disabled.json()) == (200, None)
    # persisted: another process (or a restart) reads the row
    assert BootstrapState.objects.get().disabled_by == "bootstrap"
    assert AuditEntry.objects.filter(action="bootstrap.disable", actor_name="bootstrap").count() == 1
    for response in (admin_api.get("/api/bootstrap"), admin_api.delete("/api/bootstrap")):
        assert (response.status_code, response.json()) == (410, GONE)
    for response in (boot.get("/api/bootstrap"), boot.get("/api/users"), boot.delete("/api/bootstrap")):
        assert (response.status_code, response.json()) == (410, GONE)


def test_an_admin_may_disable_it(secret, admin_api):
    assert admin_api.get("/api/bootstrap").status_code == 200
    assert admin_api.delete("/api/bootstrap").status_code == 200
    assert BootstrapState.objects.get().disabled_by == "admin"
    assert bearer(secret).get("/api/users").status_code == 410


def test_without_a_secret_there_is_no_bootstrap_identity(admin_api):
    assert (admin_api.get("/api/bootstrap").status_code, admin_api.get("/api/bootstrap").json()) == (410, GONE)
    assert admin_api.delete("/api/bootstrap").status_code == 410
    assert not BootstrapState.objects.exists()


@pytest.mark.parametrize("method", ["get", "delete"])
def test_researchers_and_anonymous_callers_are_refused(secret, alice_api, method):
    refused = getattr(alice_api, method)("/api/bootstrap")
    assert (refused.status_code, refused.json()) == (
        403,
        {"type": "UnauthorizedAccessException", "message": ADMIN_ONLY},
    )
    anonymous = getattr(APIClient(), method)("/api/bootstrap")
    assert (anonymous.status_code, anonymous.json()) == (
        403,
        {"type": "UnauthorizedAccessException", "message": BAD_TOKEN},
    )
    assert not BootstrapState.objects.exists()
    assert bearer(secret).get("/api/bootstrap").status_code == 200


@pytest.mark.parametrize("token", [SECRET[:-1], SECRET + "x", SECRET.upper()])
def test_only_the_exact_secret_is_the_bootstrap_identity(secret, token):
    response = bearer(token).get("/api/users")
    assert (response.status_code, response.json()["message"]) == (403, BAD_TOKEN)
    assert not AuditEntry.objects.filter(action="bootstrap.use").exists()


def test_the_bootstrap_identity_is_no_researcher(secret, penguin):
    response = bearer(secret).post("/api/get_initial_budget", {"dataset_name": "PENGUIN"}, format="json")
    assert (response.status_code, response.json()["message"]) == (403, UNKNOWN_USER.format(user="bootstrap"))
