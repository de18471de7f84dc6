"""Every route as every persona, from a browser (text/html) and not (JSON), DEBUG on and off: no 5xx.

Routes are read from the URLconf (a new route is covered without a row here). The browsable API
answers with the lomas status and body as a page with sign-in and sign-out links; its POST forms
hold an example body that works on the signed-in user's own dataset; a job's uid links to its status.
"""

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from lomas.console.examples import example_body
from lomas.errors import ADMIN_ONLY, BAD_TOKEN

pytestmark = pytest.mark.django_db

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JSON = "application/json"
PERSONAS = ["anonymous", "researcher", "admin"]
# Values for the path parameters of the routes.
PARAMETERS = {"username": "Alice", "dataset_name": "PENGUIN", "collection_name": "queries_archive"}
LOMAS_TYPES = {"InvalidQueryException", "UnauthorizedAccessException", "ExternalLibraryException",
               "InternalServerException"}  # fmt: skip
LIBRARIES = ["smartnoise_sql", "opendp", "diffprivlib", "smartnoise_synth"]
SUBMIT_ROUTES = [f"{prefix}{library}{suffix}" for library in LIBRARIES
                 for prefix, suffix in (("", "_query"), ("dummy_", "_query"), ("estimate_", "_cost"))]  # fmt: skip
RESEARCHER_ROUTES = ["get_dataset_metadata", "get_dummy_dataset", "get_initial_budget", "get_total_spent_budget",
                     "get_remaining_budget", "get_previous_queries", *SUBMIT_ROUTES]  # fmt: skip


@pytest.fixture(autouse=True)
def _fast_password_hashes(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _paths() -> list[str]:
    """Every URL of the URLconf that a browser can open (admin pages aside: their own tests cover them)."""
    paths: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if route.startswith(("admin/", "o/", "^")):
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                paths.append("/" + route)

    walk(get_resolver().url_patterns, "")
    return sorted(paths)


def _concrete(path: str, job_uid: str) -> str:
    path = path.replace("<str:uid>", job_uid)
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: PARAMETERS[m.group(1)], path)


@pytest.fixture
def job_uid(alice: Any, settings: Any) -> str:
    """A job of the researcher's, still in progress (its status answers at once)."""
    settings.LOMAS_STATUS_WAIT_SECONDS = 0
    client = Client()
    client.force_login(alice)
    metadata = alice.budgets.get().dataset.metadata
    body = example_body("estimate_smartnoise_sql_cost", dataset_name="PENGUIN", metadata=metadata)
    return client.post("/api/estimate_smartnoise_sql_cost", body, content_type=JSON).json()["uid"]


def _client(persona: str, alice: Any, admin_user: Any) -> Client:
    client = Client(raise_request_exception=False)
    if persona != "anonymous":
        client.force_login(alice if persona == "researcher" else admin_user)
    return client


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
@pytest.mark.parametrize("accept", [BROWSER, JSON], ids=["html", "json"])
@pytest.mark.parametrize("persona", PERSONAS)
def test_every_route_answers_without_a_server_error(persona, accept, debug, settings, alice, admin_user, job_uid):
    settings.DEBUG = debug
    client = _client(persona, alice, admin_user)
    for path in _paths():
        url = _concrete(path, job_uid)
        response = client.get(url, HTTP_ACCEPT=accept)
        assert response.status_code < 500, (url, response.status_code, response.content[:500])
        content = response.content.decode(errors="replace")
        assert "Traceback (most recent call last)" not in content and 'id="traceback"' not in content, url
        is_page = response["Content-Type"].startswith("text/html") and not 300 <= response.status_code < 400
        if is_page and path.startswith("/api/") and path != "/api/docs":
            signed_in = persona != "anonymous"
            assert ('id="sign-out"' in content) is signed_in and ('id="sign-in"' in content) is not signed_in, url
        if response["Content-Type"].startswith(JSON) and response.status_code >= 400:
            body = response.json()
            assert body.get("type") in LOMAS_TYPES or "detail" in body, (url, body)


@pytest.mark.parametrize("accept", [BROWSER, JSON], ids=["html", "json"])
@pytest.mark.parametrize(
    ("persona", "path", "message"),
    [
        ("anonymous", "/api/get_remaining_budget", BAD_TOKEN),
        ("anonymous", "/api/state", BAD_TOKEN),
        ("researcher", "/api/state", ADMIN_ONLY),
        ("researcher", "/api/users", ADMIN_ONLY),
        ("researcher", "/api/config", ADMIN_ONLY),
    ],
)
def test_refusals_answer_403_with_the_lomas_error(persona, path, message, accept, alice, admin_user):
    response = _client(persona, alice, admin_user).get(path, HTTP_ACCEPT=accept)

    assert response.status_code == 403
    if accept == JSON:
        assert response.json() == {"type": "UnauthorizedAccessException", "message": message}
    else:
        page = html.unescape(response.content.decode())
        assert '"type": "UnauthorizedAccessException"' in page and message in page
        if persona == "anonymous":
            assert 'id="sign-in-hint"' in page and f"/accounts/login/?next={path}" in page


def test_anonymous_api_root_redirects_to_a_refusal_page_not_a_crash(alice, admin_user):
    response = _client("anonymous", alice, admin_user).get("/api/", HTTP_ACCEPT=BROWSER, follow=True)

    assert response.redirect_chain == [("state", 307)]
    assert response.status_code == 403 and 'id="sign-in"' in response.content.decode()


def _form_body(page: str) -> str:
    match = re.search(r'<textarea name="_content"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no raw data form"
    return html.unescape(match.group(1)).strip()


@pytest.mark.parametrize("route", RESEARCHER_ROUTES)
def test_post_forms_hold_an_example_that_works_on_the_researchers_dataset(
    route, alice, admin_user, django_capture_on_commit_callbacks
):
    client = _client("researcher", alice, admin_user)
    form = client.get(f"/api/{route}", HTTP_ACCEPT=BROWSER)
    assert form.status_code == 405
    body = _form_body(form.content.decode())
    assert '"dataset_name": "PENGUIN"' in body

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/{route}", body, content_type=JSON, HTTP_ACCEPT=BROWSER)

    page = answer.content.decode()
    if route in SUBMIT_ROUTES:
        assert answer.status_code == 202, page
        uid = re.search(r'id="job-status">\s*Job <a href="/api/status/([0-9a-f-]+)"', page)
        assert uid, "the job's uid is not a link to its status"
        status_page = client.get(f"/api/status/{uid.group(1)}", HTTP_ACCEPT=BROWSER).content.decode()
        assert '"status": "complete"' in html.unescape(status_page) and 'id="job-status"' not in status_page
    else:
        assert answer.status_code == 200, page


def test_post_forms_are_empty_for_an_admin_without_a_budget(alice, admin_user):
    form = _client("admin", alice, admin_user).get("/api/get_remaining_budget", HTTP_ACCEPT=BROWSER)

    assert form.status_code == 405 and _form_body(form.content.decode()) == ""


@pytest.mark.parametrize("dataset", ["IRIS", "TITANIC", "PUMS", "BIRTHDAYS"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_example_cost_estimates_run_on_other_demo_datasets(dataset, library, demo_datasets, submit):
    from accounts.services import user_create
    from budgets.services import budget_grant
    from datasets.models import Dataset
    from tests.conftest import api_client_for

    user = user_create(username="Carol", password="carol-password")
    target = Dataset.objects.get(name=dataset)
    budget_grant(user=user, dataset=target, epsilon=10, delta=1e-3)
    api = api_client_for(user)
    body = example_body(f"estimate_{library}_cost", dataset_name=dataset, metadata=target.metadata)
    if (dataset, library) == ("BIRTHDAYS", "diffprivlib"):  # one date column: nothing to fit
        assert body is None
        return

    accepted = submit(api, f"estimate_{library}_cost", body)

    assert accepted.status_code == 202, accepted.content
    status = api.get(f"/api/status/{accepted.json()['uid']}").json()
    assert (status["status"], status["error"]) == ("complete", None)
