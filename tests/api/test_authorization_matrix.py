"""Who may call what: every /api/ endpoint by every kind of caller, with real bearer tokens.

Callers: anonymous (no token), a valid token of an account unknown to lomas (no lomas profile),
the token of a user deleted since, a researcher without access to PENGUIN (Bob, IRIS only; on
/status/{uid} he asks for Alice's job: another researcher's job), a researcher with access
(Alice), a lomas admin (no budget on PENGUIN), and the bootstrap secret (spec §7: an admin that is
no lomas user). The endpoints are read from the URLconf, so
a new endpoint without a row here fails the test.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from lomas.errors import ADMIN_ONLY, BAD_TOKEN, JOB_OF_OTHER_USER, NO_ACCESS, UNKNOWN_USER
from queries.models import Job

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
METADATA = ROOT / "datasets" / "demo" / "metadata"
CALLERS = ["anonymous", "unknown_user", "deleted_user", "no_access", "with_access", "admin", "bootstrap"]
BOOTSTRAP_SECRET = "matrix-bootstrap-secret-0123456789"
PUBLIC, REDIRECT, RESEARCHER, SUBMIT, STATUS, ADMIN = "public", "redirect", "researcher", "submit", "status", "admin"

LIBRARY_BODIES = {
    "smartnoise_sql": {"query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
                       "mechanisms": {}, "postprocess": True},
    "opendp": {"opendp_json": "e30=", "epsilon": 1.0, "delta": 1e-6, "rho": None, "approx_zcdp": False},
    "diffprivlib": {"diffprivlib_json": "{}", "feature_columns": ["bill_length_mm"], "target_columns": ["species"],
                    "test_size": 0.2, "test_train_split_seed": 1, "imputer_strategy": "drop"},
    "smartnoise_synth": {"synth_name": "mwem", "epsilon": 1.0, "delta": None, "select_cols": [], "synth_params": {},
                         "nullable": True, "constraints": "", "return_model": False, "condition": "", "nb_samples": 10},
}  # fmt: skip
DATASET_YAML = f"""datasets:
- dataset_name: PENGUIN_COPY
  dataset_access: {{database_type: PATH_DB, path: penguin.csv}}
  metadata_access: {{database_type: PATH_DB, path: "{METADATA / "penguin.json"}"}}
"""
USERS_YAML = "users:\n- id: {name: Carol, email: carol@example.com, client_secret: carol}\n  datasets_list: []\n"


@dataclass
class World:
    """What a request needs: Alice's job, the data directory."""

    alice_job: Job
    data_dir: Path


def _json(method: str, path: str, body: Any = None) -> Callable[[World], tuple[str, str, dict[str, Any]]]:
    return lambda world: (method, path, {"data": body, "format": "json"} if body is not None else {})


def _upload(method: str, path: str, name: str, content: str) -> Callable[[World], tuple[str, str, dict[str, Any]]]:
    return lambda world: (method, path, {"data": {"file": SimpleUploadedFile(name, content.encode())}})


def _status(world: World) -> tuple[str, str, dict[str, Any]]:
    return "get", f"/api/status/{world.alice_job.uid}", {}


def _add_dataset(world: World) -> tuple[str, str, dict[str, Any]]:
    (world.data_dir / "copy.json").write_text((METADATA / "penguin.json").read_text())
    body = {"dataset_name": "PENGUIN_COPY", "database_type": "PATH_DB", "metadata_database_type": "PATH_DB",
            "dataset_path": "penguin.csv", "metadata_path": "copy.json"}  # fmt: skip
    return "post", "/api/dataset", {"data": body, "format": "json"}


PENGUIN = {"dataset_name": "PENGUIN"}
# (path as in the schema, method) -> (kind, the request an allowed caller would send)
ENDPOINTS: dict[tuple[str, str], tuple[str, Callable[[World], tuple[str, str, dict[str, Any]]]]] = {
    ("/api/", "get"): (REDIRECT, _json("get", "/api/")),
    ("/api/live", "get"): (PUBLIC, _json("get", "/api/live")),
    ("/api/health", "get"): (PUBLIC, _json("get", "/api/health")),
    ("/api/schema", "get"): (PUBLIC, _json("get", "/api/schema")),
    ("/api/docs", "get"): (PUBLIC, _json("get", "/api/docs")),
    ("/api/state", "get"): (ADMIN, _json("get", "/api/state")),
    ("/api/config", "get"): (ADMIN, _json("get", "/api/config")),
    ("/api/bootstrap", "get"): (ADMIN, _json("get", "/api/bootstrap")),
    ("/api/bootstrap", "delete"): (ADMIN, _json("delete", "/api/bootstrap")),
    ("/api/get_dataset_metadata", "post"): (RESEARCHER, _json("post", "/api/get_dataset_metadata", PENGUIN)),
    ("/api/get_dummy_dataset", "post"): (
        RESEARCHER,
        _json("post", "/api/get_dummy_dataset", {**PENGUIN, "dummy_nb_rows": 10, "dummy_seed": 1}),
    ),
    ("/api/get_initial_budget", "post"): (RESEARCHER, _json("post", "/api/get_initial_budget", PENGUIN)),
    ("/api/get_total_spent_budget", "post"): (RESEARCHER, _json("post", "/api/get_total_spent_budget", PENGUIN)),
    ("/api/get_remaining_budget", "post"): (RESEARCHER, _json("post", "/api/get_remaining_budget", PENGUIN)),
    ("/api/get_previous_queries", "post"): (RESEARCHER, _json("post", "/api/get_previous_queries", PENGUIN)),
    ("/api/status/{uid}", "get"): (STATUS, _status),
    ("/api/datasets", "get"): (ADMIN, _json("get", "/api/datasets")),
    ("/api/users", "get"): (ADMIN, _json("get", "/api/users")),
    ("/api/users", "post"): (ADMIN, _json("post", "/api/users", {"id": {"name": "Dave", "email": "d@example.com"}})),
    ("/api/usersfile", "post"): (ADMIN, _upload("post", "/api/usersfile?dry_run=true", "users.yaml", USERS_YAML)),
    ("/api/users/{username}", "delete"): (ADMIN, _json("delete", "/api/users/Bob")),
    ("/api/users/{username}/archive", "get"): (ADMIN, _json("get", "/api/users/Alice/archive")),
    ("/api/users/{username}/dataset", "patch"): (
        ADMIN,
        _json("patch", "/api/users/Alice/dataset", {"dataset_name": "IRIS"}),
    ),
    ("/api/users/{username}/dataset/del", "patch"): (
        ADMIN,
        _json("patch", "/api/users/Bob/dataset/del", {"dataset_name": "IRIS"}),
    ),
    ("/api/users/{username}/dataset/budget", "patch"): (
        ADMIN,
        _json("patch", "/api/users/Alice/dataset/budget", {**PENGUIN, "epsilon": 20.0, "delta": 0.01}),
    ),
    ("/api/collections/{collection_name}", "delete"): (ADMIN, _json("delete", "/api/collections/queries_archive")),
    ("/api/dataset/bulk", "post"): (
        ADMIN,
        _upload("post", "/api/dataset/bulk?dry_run=true", "datasets.yaml", DATASET_YAML),
    ),
    ("/api/dataset", "post"): (ADMIN, _add_dataset),
    ("/api/dataset/{dataset_name}", "get"): (ADMIN, _json("get", "/api/dataset/PENGUIN")),
    ("/api/dataset/{dataset_name}", "delete"): (ADMIN, _json("delete", "/api/dataset/UNUSED")),
    ("/api/dataset/{dataset_name}/budget", "get"): (ADMIN, _json("get", "/api/dataset/PENGUIN/budget")),
    ("/api/dataset/{dataset_name}/budget", "patch"): (
        ADMIN,
        _json("patch", "/api/dataset/PENGUIN/budget", {"epsilon": 50.0, "delta": 0.01}),
    ),
    ("/api/dataset/{dataset_name}/metadata", "get"): (ADMIN, _json("get", "/api/dataset/PENGUIN/metadata")),
    ("/api/dataset/{dataset_name}/metadata", "patch"): (
        ADMIN,
        _upload("patch", "/api/dataset/PENGUIN/metadata", "penguin.json", (METADATA / "penguin.json").read_text()),
    ),
}
for _library, _body in LIBRARY_BODIES.items():
    for _route in (f"{_library}_query", f"dummy_{_library}_query", f"estimate_{_library}_cost"):
        _request = {**PENGUIN, **_body, "dummy_nb_rows": 10, "dummy_seed": 1}
        ENDPOINTS[(f"/api/{_route}", "post")] = (SUBMIT, _json("post", f"/api/{_route}", _request))


def _allowed(kind: str) -> int:
    return {PUBLIC: 200, REDIRECT: 307, RESEARCHER: 200, SUBMIT: 202, STATUS: 200, ADMIN: 200}[kind]


def _refusal(message: str) -> tuple[int, dict[str, str]]:
    return 403, {"type": "UnauthorizedAccessException", "message": message}


def expected(kind: str, caller: str, world: World) -> tuple[int, dict[str, str] | None]:
    """The status and (for a refusal) the exact lomas error body of one cell."""
    if kind in (PUBLIC, REDIRECT):
        return _allowed(kind), None
    if caller in ("anonymous", "deleted_user"):
        return _refusal(BAD_TOKEN)
    if caller == "unknown_user":
        return _refusal(UNKNOWN_USER.format(user="operator"))
    if caller == "bootstrap":
        return (_allowed(kind), None) if kind == ADMIN else _refusal(UNKNOWN_USER.format(user="bootstrap"))
    name = {"no_access": "Bob", "with_access": "Alice", "admin": "admin"}[caller]
    if kind == ADMIN:
        return (_allowed(kind), None) if caller == "admin" else _refusal(ADMIN_ONLY)
    if kind == STATUS:
        if caller == "with_access":
            return _allowed(kind), None
        return _refusal(JOB_OF_OTHER_USER.format(user=name, uid=world.alice_job.uid))
    if caller == "with_access":
        return _allowed(kind), None
    return _refusal(NO_ACCESS.format(user=name, dataset="PENGUIN"))


@pytest.fixture(autouse=True)
def _fast_password_hashes(settings: Any) -> None:
    """Six accounts per cell: a fast hasher keeps the matrix quick (passwords play no part here)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _bootstrap_secret(settings: Any) -> None:
    settings.LOMAS_BOOTSTRAP_SECRET = BOOTSTRAP_SECRET


def _url_routes() -> set[tuple[str, str]]:
    """(path, method) of every view under /api/ in the URLconf."""
    (api,) = [p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "api/"]
    routes: set[tuple[str, str]] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
                continue
            assert isinstance(pattern, URLPattern)
            view = getattr(pattern.callback, "cls", None)
            path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
            if view is None:  # a plain Django view answers GET
                routes.add((path, "get"))
                continue
            routes.update(
                (path, method)
                for method in view.http_method_names
                if method not in ("options", "head") and hasattr(view, method)
            )

    walk(api.url_patterns, "api/")
    return routes


def test_every_endpoint_has_a_row():
    assert _url_routes() == set(ENDPOINTS)


def _bearer(user: Any) -> str:
    token = AccessToken.objects.create(
        user=user, token=uuid4().hex, expires=timezone.now() + timedelta(hours=1), scope="openid profile email"
    )
    return token.token


@pytest.fixture
def callers(alice: Any, bob: Any, admin_user: Any) -> dict[str, APIClient]:
    from accounts.models import User
    from accounts.services import user_create

    operator = User.objects.create_user(username="operator", password="operator-password")
    gone = user_create(username="Gone", email="gone@example.com", password="gone-password")
    gone_token = _bearer(gone)
    gone.delete()
    tokens = {
        "unknown_user": _bearer(operator),
        "deleted_user": gone_token,
        "no_access": _bearer(bob),
        "with_access": _bearer(alice),
        "admin": _bearer(admin_user),
    }
    tokens["bootstrap"] = BOOTSTRAP_SECRET
    clients = {"anonymous": APIClient()}
    for caller, token in tokens.items():
        clients[caller] = APIClient()
        clients[caller].credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return clients


@pytest.fixture
def world(alice: Any, penguin: Any, _data_dir: Path) -> World:
    from datasets.services import dataset_create
    from queries.services import job_complete
    from tests.conftest import demo_metadata

    dataset_create(name="UNUSED", metadata=demo_metadata("iris"), path="iris.csv")  # no budgets: it may be deleted

    job = Job.objects.create(user=alice, dataset=penguin, library="smartnoise_sql", kind="cost", request={})
    job_complete(job=job, result={"epsilon": 1.0, "delta": 0.0})
    return World(alice_job=job, data_dir=_data_dir)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS), ids=lambda e: f"{e[1].upper()} {e[0]}")
def test_cell(endpoint, caller, callers, world):
    kind, build = ENDPOINTS[endpoint]
    method, url, kwargs = build(world)
    response = getattr(callers[caller], method)(url, **kwargs)
    status, error = expected(kind, caller, world)
    assert response.status_code == status, response.content[:500]
    if error is not None:
        assert response.json() == error
    elif status == 307:
        assert response["Location"] == "state"
    elif kind == SUBMIT:
        assert response.json()["status"] == "in_progress"
        assert response.json()["requested_by"] == "Alice"
    elif response["Content-Type"].startswith("application/json"):
        body = response.json()
        assert not (isinstance(body, dict) and str(body.get("type", "")).endswith("Exception"))
