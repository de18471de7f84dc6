"""A researcher signing in with lomas-client 0.5.1's default device flow.

The client prints where to approve the sign-in; the scenario copies what it prints to
`prompt_file`, where the test's bot reads the verification URL and approves it.
"""

import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

from lomas_client import Client


class _PromptFile(io.TextIOBase):
    """Stands in for stdout while the client signs in: each write lands in the file at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, text: str) -> int:
        with self.path.open("a", encoding="utf-8") as prompt:
            prompt.write(text)
        return len(text)


def device_sign_in_and_query(
    user: str, dataset: str, query: str, epsilon: float, delta: float, prompt_file: str
) -> dict:
    """Sign in by device flow, query, then query again once the access token is due for refresh."""
    with contextlib.redirect_stdout(_PromptFile(Path(prompt_file))):
        client = Client(
            app_url=os.environ["LOMAS_CLIENT_APP_URL"],
            oidc_discovery_url=os.environ["LOMAS_CLIENT_OIDC_DISCOVERY_URL"],
            dataset_name=dataset,
            user_name=user,
        )
    session = client.http_client._oauth2_session
    first = dict(session.token)
    metadata = client.get_dataset_metadata()
    result = client.smartnoise_sql.query(query=query, epsilon=epsilon, delta=delta)
    # The client refreshes 30 s before expiry: wait until the first access token is in that window.
    time.sleep(max(0.0, first["expires_at"] - 30 - time.time() + 1))
    remaining = client.get_remaining_budget()
    token_file = Path(tempfile.gettempdir()) / f"lomas_{user}_{dataset}_token.json"
    return {
        "columns": [column["name"] for column in metadata["tableSchema"]["columns"]],
        "result": {"epsilon": result.epsilon, "delta": result.delta, "columns": list(result.result.df.columns)},
        "remaining": remaining.model_dump(),
        "first_access_token": first["access_token"],
        "first_refresh_token": first["refresh_token"],
        "access_token": session.token["access_token"],
        "saved_access_token": json.loads(token_file.read_text())["access_token"],
    }
