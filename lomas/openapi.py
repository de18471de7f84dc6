"""The OpenAPI schema of the API (/api/schema) and its Swagger UI (/api/docs), by drf-spectacular.

Request bodies come from the views' serializers (a DP route's from its library adapter). Each view
declares its success body, tags and other answers next to itself with `extend_schema`, from the
pieces defined here; the schema class adds the lomas error answers (spec §1.2) every route may give.
"""

import re
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.serializers import Serializer

# --- Error bodies (spec §1.2) -------------------------------------------------------------------


class InvalidQueryExceptionSerializer(serializers.Serializer):
    """400: invalid request or query, unknown dataset, not enough budget."""

    type = serializers.ChoiceField(choices=["InvalidQueryException"])
    message = serializers.CharField()


class UnauthorizedAccessExceptionSerializer(serializers.Serializer):
    """403 (and 429): bad token, unknown user, no access, a query already running, admin scope, submit limit."""

    type = serializers.ChoiceField(choices=["UnauthorizedAccessException"])
    message = serializers.CharField()


class ExternalLibraryExceptionSerializer(serializers.Serializer):
    """422: the DP library refused the request."""

    type = serializers.ChoiceField(choices=["ExternalLibraryException"])
    message = serializers.CharField()
    library = serializers.CharField(help_text="The wire name of the DP library, as in the route's name.")


class InternalServerExceptionSerializer(serializers.Serializer):
    """500: anything unforeseen; nothing internal is told."""

    type = serializers.ChoiceField(choices=["InternalServerException"])


class DetailSerializer(serializers.Serializer):
    """A framework answer the lomas client cannot decode (unknown job, method not allowed)."""

    detail = serializers.CharField()


INVALID = OpenApiResponse(InvalidQueryExceptionSerializer, description="InvalidQueryException")
UNAUTHORIZED = OpenApiResponse(UnauthorizedAccessExceptionSerializer, description="UnauthorizedAccessException")
INTERNAL = OpenApiResponse(InternalServerExceptionSerializer, description="InternalServerException")
NOT_JSON = OpenApiResponse(
    InvalidQueryExceptionSerializer, description="415: the body is not JSON (or, on an upload route, not multipart)"
)
GONE = OpenApiResponse(
    UnauthorizedAccessExceptionSerializer,
    description="The bootstrap identity is disabled (UnauthorizedAccessException)",
)
SUBMIT_LIMIT = OpenApiResponse(
    UnauthorizedAccessExceptionSerializer, description="Submit limit reached (UnauthorizedAccessException)"
)
UNAVAILABLE = OpenApiResponse(
    {"type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"]},
    description="The job broker or the database is unreachable (lomas error shape)",
)

# --- Success bodies -------------------------------------------------------------------------------
JSON_OBJECT = {"type": "object", "additionalProperties": True}
METADATA = OpenApiResponse(JSON_OBJECT, description="csvw-eo TableMetadata")
NULL = OpenApiResponse({"type": "null"}, description="Done (the body is JSON null)")
CHANGES = OpenApiResponse(
    {"anyOf": [{"type": "null"}, {"type": "array", "items": JSON_OBJECT}]},
    description="Done (null), or with dry_run the list of changes that would be made",
)


@extend_schema_field({"type": ["object", "null"], "additionalProperties": True})
class NullableObjectField(serializers.JSONField):
    """A JSON object or null."""


def inline_body(name: str, **fields: serializers.Field) -> Serializer:
    """A named body of plain fields, for a request or an answer."""
    return inline_serializer(name=name, fields=fields)


UPLOAD = inline_body(
    "CollectionUpload",
    file=serializers.FileField(help_text="The YAML collection"),
    clean=serializers.BooleanField(required=False),
    overwrite=serializers.BooleanField(required=False),
    dry_run=serializers.BooleanField(required=False),
)
FLAGS = [
    OpenApiParameter(flag, bool, OpenApiParameter.QUERY, required=False) for flag in ("clean", "overwrite", "dry_run")
]

# Error answers a route may give besides its success, by what the route is.
USER_ERRORS = {400: INVALID, 403: UNAUTHORIZED, 500: INTERNAL}


def admin_responses(success: Any, *, body: bool = False) -> dict[int, Any]:
    """The answers of an admin route: its success, 400 if it takes a body, 403 and 500."""
    return {200: success, **({400: INVALID} if body else {}), 403: UNAUTHORIZED, 500: INTERNAL}


# --- Schema generation ----------------------------------------------------------------------------
_LIBRARY_MODULE = re.compile(r"^queries\.libraries\.(\w+)")


class LomasAutoSchema(AutoSchema):
    """Request bodies from `InputSerializer`, unique component names, and the lomas errors on every route."""

    def get_request_serializer(self) -> Any:
        input_serializer = getattr(self.view, "InputSerializer", None)
        if input_serializer is not None:
            return input_serializer
        return super().get_request_serializer()

    def get_serializer_name(self, serializer: Serializer, direction: str) -> str:
        """Library request shapes are named after their library; nested input serializers after their view."""
        cls = type(serializer)
        library = next(
            (m.group(1) for c in cls.__mro__ if (m := _LIBRARY_MODULE.match(c.__module__)) and m.group(1) != "base"),
            None,
        )
        name = cls.__qualname__.replace("Serializer", "").replace("Input", "").replace("Api", "").replace(".", "")
        name = name.removesuffix("Request")  # drf-spectacular appends it to request components
        if library is not None:
            name = "".join(part.title() for part in library.split("_")) + name
        return name

    def get_summary(self) -> str | None:
        library, kind = getattr(self.view, "library", ""), getattr(self.view, "kind", "")
        if library and kind:
            what = {"query": "a query on the private data", "dummy": "a query on dummy data", "cost": "a cost estimate"}
            return f"{library}: submit {what[kind]}"
        return super().get_summary()

    def get_tags(self) -> list[str]:
        """A DP route is tagged with its library; every other view declares its tag with `extend_schema`."""
        if getattr(self.view, "library", ""):
            return [self.view.library]
        return super().get_tags()

    def _get_request_for_media_type(self, serializer: Any, direction: str = "request") -> Any:
        # The admin API's PATCH routes take whole bodies (lomas §1.6), not DRF partial updates.
        method, self.method = self.method, ("POST" if self.method == "PATCH" else self.method)
        try:
            return super()._get_request_for_media_type(serializer, direction)
        finally:
            self.method = method

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            responses.setdefault("403", self._get_response_for_code(UNAUTHORIZED, "403", direction=direction))
        if self.method in ("POST", "PUT", "PATCH"):
            responses.setdefault("415", self._get_response_for_code(NOT_JSON, "415", direction=direction))
        responses.setdefault("500", self._get_response_for_code(INTERNAL, "500", direction=direction))
        return responses


class BearerScheme(OpenApiAuthenticationExtension):
    """Bearer tokens from /o/token: pasted as they are, or got by Swagger's "Authorize" with the OAuth2
    password grant of the public client `lomas_client` (lomas-client 0.5.1 uses that grant or the device one)."""

    target_class = "accounts.authentication.LomasBearerAuthentication"
    name = ["bearer", "oauth2"]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        """Either scheme authorizes a request."""
        return [{"bearer": []}, {"oauth2": []}]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        bearer = {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from /o/token, or from the external identity provider if one is set.",
        }
        password = {"tokenUrl": reverse("oauth2_provider:token"), "scopes": settings.OAUTH2_PROVIDER["SCOPES"]}
        client = settings.LOMAS_OAUTH_CLIENT_ID
        oauth2 = {
            "type": "oauth2",
            "description": f"Sign in with your lomas user name and password (client id `{client}`, no secret).",
            "flows": {"password": password},
        }
        return [bearer, oauth2]
