"""The OpenAPI schema (/api/schema) and its Swagger UI (/api/docs)."""

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

LOMAS_ERRORS = {
    "400": "InvalidQueryException",
    "403": "UnauthorizedAccessException",
    "500": "InternalServerException",
}


def _api_routes() -> set[tuple[str, str]]:
    """(path, method) of every DRF view under /api/, from the URLconf."""
    (api,) = [p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "api/"]
    routes: set[tuple[str, str]] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "cls"):
                view = pattern.callback.cls
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                for method in view.http_method_names:
                    if method not in {"options", "head"} and hasattr(view, method):
                        routes.add((path, method))

    walk(api.url_patterns, "api/")
    return routes


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.1")


def test_schema_documents_every_api_route(schema):
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    routes = _api_routes() - {("/api/schema", "get"), ("/api/docs", "get")}
    assert routes == documented


def test_every_authenticated_operation_documents_the_lomas_errors(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if path in {"/api/live", "/api/health"}:
                assert "403" not in operation["responses"]
                continue
            assert operation["security"][0] == {"bearer": []}, (path, method)
            for code, wire_type in LOMAS_ERRORS.items():
                if code == "400" and "requestBody" not in operation:
                    continue
                refs = str(operation["responses"][code]["content"]["application/json"]["schema"])
                if code == "400" and path == "/api/status/{uid}":
                    assert "Job" in refs  # a failed job answers with its status code
                assert wire_type in refs, (path, method, code)


def test_dp_routes_take_their_library_request_and_answer_a_job(schema):
    operation = schema["paths"]["/api/dummy_smartnoise_sql_query"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"dataset_name", "query_str", "epsilon", "delta", "dummy_nb_rows", "dummy_seed"} <= set(body["required"])
    assert list(operation["requestBody"]["content"]) == ["application/json"]
    assert operation["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/Job")
    assert "UnauthorizedAccessException" in str(operation["responses"]["429"])
    estimate = schema["paths"]["/api/estimate_opendp_cost"]["post"]["requestBody"]["content"]["application/json"]
    assert estimate["schema"]["$ref"].endswith("/OpendpCostRequest")


def test_admin_routes_document_bodies_uploads_and_null_answers(schema):
    budget = schema["paths"]["/api/users/{username}/dataset/budget"]["patch"]
    ref = budget["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][ref]["required"]) == {"dataset_name", "epsilon", "delta"}
    assert budget["responses"]["200"]["content"]["application/json"]["schema"] == {"type": "null"}
    upload = schema["paths"]["/api/usersfile"]["post"]["requestBody"]["content"]
    ref = upload["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema["components"]["schemas"][ref]["properties"]["file"]["format"] == "binary"
    assert schema["components"]["schemas"][ref]["required"] == ["file"]
    assert budget["tags"] == ["admin"]


def test_swagger_ui_renders_from_local_static_files_only(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", html)
    assets = re.findall(r"(?:src|href)=\"/static/([^\"]+)\"", html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), asset
    assert '"/api/schema"' in html
