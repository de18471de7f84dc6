"""FreePass authentication: development only, refused at start-up without DEBUG."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
BAD_TOKEN = {"type": "UnauthorizedAccessException", "message": "Failed bearer token verification."}


@pytest.fixture
def free_pass(settings: Any) -> None:
    settings.DEBUG = True
    settings.LOMAS_FREE_PASS_ENABLED = True


def initial_budget(bearer: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer}")
    return client.post("/api/get_initial_budget", {"dataset_name": "PENGUIN"}, format="json")


@pytest.mark.parametrize(
    "bearer",
    [
        pytest.param("Alice", id="user name"),
        pytest.param(json.dumps({"name": "Alice", "email": "alice@example.com"}), id="JSON name and email"),
    ],
)
def test_free_pass_bearer_names_the_user(alice, free_pass, bearer):
    answer = initial_budget(bearer)
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"initial_epsilon": 10.0, "initial_delta": 0.005}


def test_free_pass_of_an_unknown_user_is_refused(alice, free_pass):
    answer = initial_budget(json.dumps({"name": "Mallory", "email": "m@example.com"}))
    assert answer.status_code == 403
    assert answer.json()["message"] == "User Mallory does not exist. Please, verify the client object initialisation."


@pytest.mark.parametrize(
    "bearer", ['{"name": "Alice"', '{"email": "alice@example.com"}', '{"name": 7}', '{"name": ""}']
)
def test_free_pass_bearer_that_is_not_an_identity_is_refused(alice, free_pass, bearer):
    answer = initial_budget(bearer)
    assert (answer.status_code, answer.json()) == (403, BAD_TOKEN)


def test_free_pass_is_off_by_default_and_without_debug(alice, settings):
    assert (initial_budget("Alice").status_code, initial_budget("Alice").json()) == (403, BAD_TOKEN)
    settings.LOMAS_FREE_PASS_ENABLED = True
    settings.DEBUG = False
    assert (initial_budget("Alice").status_code, initial_budget("Alice").json()) == (403, BAD_TOKEN)


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Start Django as a server process does (settings, then apps), with the given environment."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "LOMAS_VAR_DIR": str(tmp_path), "LOMAS_FREE_PASS_ENABLED": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_free_pass_without_debug_is_refused_at_start_up(tmp_path):
    started = _start(
        tmp_path, DJANGO_DEBUG="false", DJANGO_SECRET_KEY="a-secret", LOMAS_OIDC_RSA_PRIVATE_KEY="a-pem-key"
    )
    assert started.returncode != 0
    assert "ImproperlyConfigured: LOMAS_FREE_PASS_ENABLED is for development only" in started.stderr


def test_free_pass_with_debug_starts_with_a_loud_warning(tmp_path):
    started = _start(tmp_path, DJANGO_DEBUG="true")
    assert started.returncode == 0, started.stderr
    assert "WARNING accounts.freepass !!! LOMAS_FREE_PASS_ENABLED is on" in started.stderr


def test_free_pass_of_a_deactivated_user_is_refused(alice, free_pass):
    alice.is_active = False
    alice.save()
    answer = initial_budget("Alice")
    assert answer.status_code == 403
    assert answer.json() == {"type": "UnauthorizedAccessException", "message": "User Alice is deactivated."}
