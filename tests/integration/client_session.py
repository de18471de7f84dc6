"""Helpers for scenario modules: a lomas-client 0.5.1 session against the server under test."""

import os
from typing import Any

from lomas_client import Client


def connect(user: str, password: str, dataset: str) -> Client:
    """A client signed in with the password grant, as the server under test names it in the environment."""
    return Client(
        app_url=os.environ["LOMAS_CLIENT_APP_URL"],
        oidc_discovery_url=os.environ["LOMAS_CLIENT_OIDC_DISCOVERY_URL"],
        dataset_name=dataset,
        use_password_flow=True,
        user_name=user,
        user_password=password,
    )


def client_error(exc: Exception) -> dict[str, Any]:
    """The error a scenario met, as JSON."""
    return {"error": type(exc).__name__, "message": str(exc)}
