"""lomas-client 0.5.1 signs in with its default device flow against a live stack; a bot
approves the sign-in on the verification pages over HTTP; the client queries and
refreshes its short-lived access token by itself."""

import re
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.integration.conftest import start_stack

GROUPED_COUNT = "SELECT species, COUNT(*) AS n FROM df GROUP BY species"
ACCESS_TOKEN_SECONDS = 40  # the client refreshes 30 s before expiry


def _form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html
    )
    assert match, f"no {name} in the page"
    return match.group(1)


def approve_on_verification_pages(prompt_file: Path, username: str, password: str, seen: dict[str, Any]) -> None:
    """What the researcher does in a browser: open the printed URL, sign in, confirm the code, approve."""
    deadline = time.monotonic() + 120
    while not (match := re.search(r"Go to: (\S+)", prompt_file.read_text() if prompt_file.exists() else "")):
        assert time.monotonic() < deadline, "the client printed no verification URL"
        time.sleep(0.2)
    seen["url"] = match.group(1)
    browser = requests.Session()
    login = browser.get(seen["url"], timeout=30)
    assert "/accounts/login/" in login.url
    code_page = browser.post(
        login.url,
        data={
            "username": username,
            "password": password,
            "next": _form_value(login.text, "next"),
            "csrfmiddlewaretoken": _form_value(login.text, "csrfmiddlewaretoken"),
        },
        timeout=30,
    )
    seen["user_code"] = _form_value(code_page.text, "user_code")
    confirm_page = browser.post(
        code_page.url,
        data={
            "user_code": seen["user_code"],
            "csrfmiddlewaretoken": _form_value(code_page.text, "csrfmiddlewaretoken"),
        },
        timeout=30,
    )
    seen["confirm_url"] = confirm_page.url
    status_page = browser.post(
        confirm_page.url,
        data={"action": "accept", "csrfmiddlewaretoken": _form_value(confirm_page.text, "csrfmiddlewaretoken")},
        timeout=30,
    )
    seen["approved"] = "Approved" in status_page.text


def test_lomas_client_signs_in_by_device_flow_queries_and_refreshes(tmp_path):
    env = {"LOMAS_ACCESS_TOKEN_EXPIRE_SECONDS": str(ACCESS_TOKEN_SECONDS)}
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    with start_stack(var_dir, extra_env=env, concurrency=2) as stack:
        # given: the bot waits for the client's prompt
        prompt_file = tmp_path / "prompt.txt"
        seen: dict[str, Any] = {}
        bot = threading.Thread(
            target=approve_on_verification_pages, args=(prompt_file, "Dr.Antartica", "dr.antartica", seen)
        )
        bot.start()
        # when: the client signs in with its default flow (no password given), queries, waits, queries
        out = stack.client(
            "scenarios_device:device_sign_in_and_query",
            user="Dr.Antartica",
            dataset="PENGUIN",
            query=GROUPED_COUNT,
            epsilon=1.0,
            delta=1e-5,
            prompt_file=str(prompt_file),
        )
        bot.join(timeout=60)
        # then: the sign-in went through the pages
        assert seen["url"] == f"{stack.base_url}/o/device/?user_code={seen['user_code']}"
        assert seen["confirm_url"].startswith(f"{stack.base_url}/o/device-confirm/lomas_client/")
        assert seen["approved"] is True
        assert "Authorization process complete." in prompt_file.read_text()
        # ... the client queried with its token
        assert out["columns"][:2] == ["species", "island"]
        assert out["result"]["columns"] == ["species", "n"]
        assert out["remaining"]["remaining_epsilon"] == 10.0 - out["result"]["epsilon"]
        # ... and refreshed it by itself: a new access token, saved, and the old one is revoked
        assert out["access_token"] != out["first_access_token"]
        assert out["saved_access_token"] == out["access_token"]
        old = stack.post("get_remaining_budget", out["first_access_token"], {"dataset_name": "PENGUIN"})
        assert old.status_code == 403
        assert old.json() == {"type": "UnauthorizedAccessException", "message": "Failed bearer token verification."}
        reused = requests.post(
            f"{stack.base_url}/o/token/",
            data={
                "grant_type": "refresh_token",
                "refresh_token": out["first_refresh_token"],
                "client_id": "lomas_client",
            },
            timeout=30,
        )
        assert reused.json()["error"] == "invalid_grant"
