"""The OpenAPI schema of the API (/api/schema) and its Swagger UI (/api/docs), by drf-spectacular.

Request bodies come from the views' serializers (a DP route's from its library adapter); every
route documents its lomas error answers (spec §1.2) and its success body. Views of other apps
are documented here through view extensions, so that they stay plain DRF views.
"""

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.serializers import Serializer

from lomas.requests import DatasetRequestSerializer

# --- Error bodies (spec §1.2) -------------------------------------------------------------------
ERROR_LIBRARIES = ["smartnoise_sql", "smartnoise_synth", "opendp", "opendp_polars", "diffprivlib"]


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
    library = serializers.ChoiceField(choices=ERROR_LIBRARIES)


class InternalServerExceptionSerializer(serializers.Serializer):
    """500: anything unforeseen; nothing internal is told."""

    type = serializers.ChoiceField(choices=["InternalServerException"])


class DetailSerializer(serializers.Serializer):
    """A framework answer the lomas client cannot decode (unknown job, method not allowed)."""

    detail = serializers.CharField()


INVALID = OpenApiResponse(InvalidQueryExceptionSerializer, description="InvalidQueryException")
UNAUTHORIZED = OpenApiResponse(UnauthorizedAccessExceptionSerializer, description="UnauthorizedAccessException")
INTERNAL = OpenApiResponse(InternalServerExceptionSerializer, description="InternalServerException")
SUBMIT_LIMIT = OpenApiResponse(
    UnauthorizedAccessExceptionSerializer, description="Submit limit reached (UnauthorizedAccessException)"
)
UNAVAILABLE = OpenApiResponse(
    {"type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"]},
    description="The job broker or the database is unreachable (lomas error shape)",
)

# --- Success bodies -------------------------------------------------------------------------------
_JSON_OBJECT = {"type": "object", "additionalProperties": True}
NULL = OpenApiResponse({"type": "null"}, description="Done (the body is JSON null)")
CHANGES = OpenApiResponse(
    {"anyOf": [{"type": "null"}, {"type": "array", "items": _JSON_OBJECT}]},
    description="Done (null), or with dry_run the list of changes that would be made",
)


@extend_schema_field({"type": ["object", "null"], "additionalProperties": True})
class NullableObjectField(serializers.JSONField):
    """A JSON object or null."""


class JobSerializer(serializers.Serializer):
    """A DP job: 202 at submission, then its state at /status/{uid}."""

    uid = serializers.UUIDField()
    requested_by = serializers.CharField()
    status = serializers.ChoiceField(choices=["in_progress", "complete", "failed"])
    result = NullableObjectField(help_text="QueryResponse or CostResponse once complete")
    error = NullableObjectField(help_text="The lomas error of a failed job")
    status_code = serializers.IntegerField()


class ArchiveSerializer(serializers.Serializer):
    """An archived real query (spec §2.6)."""

    user_name = serializers.CharField()
    dataset_name = serializers.CharField()
    dp_library = serializers.CharField()
    dp_librairy = serializers.CharField(help_text="The same, spelt as lomas ≤0.4 clients read it")
    client_input = serializers.JSONField()
    response = serializers.JSONField()
    timestamp = serializers.FloatField()


class PreviousQueriesSerializer(serializers.Serializer):
    previous_queries = ArchiveSerializer(many=True)


class UserIdSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.CharField(allow_blank=True)


class UserSerializer(serializers.Serializer):
    """A lomas User (spec §4.1); secrets are never shown."""

    id = UserIdSerializer()
    may_query = serializers.BooleanField()
    admin = serializers.BooleanField()
    datasets_list = serializers.ListField(child=serializers.JSONField())


class DatasetInfoSerializer(serializers.Serializer):
    """DSInfo (spec §4.2)."""

    dataset_name = serializers.CharField()
    dataset_access = serializers.JSONField()
    metadata_access = serializers.JSONField()


def _body(name: str, **fields: serializers.Field) -> Serializer:
    return inline_serializer(name=name, fields=fields)


METADATA = OpenApiResponse(_JSON_OBJECT, description="csvw-eo TableMetadata")
DUMMY = _body(
    "DummyDataset",
    dtypes=serializers.DictField(child=serializers.CharField()),
    dummy_df=serializers.JSONField(help_text='pandas to_dict(orient="tight")'),
)
INITIAL_BUDGET = _body(
    "InitialBudget", initial_epsilon=serializers.FloatField(), initial_delta=serializers.FloatField()
)
SPENT_BUDGET = _body(
    "SpentBudget", total_spent_epsilon=serializers.FloatField(), total_spent_delta=serializers.FloatField()
)
REMAINING_BUDGET = _body(
    "RemainingBudget", remaining_epsilon=serializers.FloatField(), remaining_delta=serializers.FloatField()
)
UPLOAD = _body(
    "CollectionUpload",
    file=serializers.FileField(help_text="The YAML collection"),
    clean=serializers.BooleanField(required=False),
    overwrite=serializers.BooleanField(required=False),
    dry_run=serializers.BooleanField(required=False),
)
METADATA_UPLOAD = _body("MetadataUpload", file=serializers.FileField(help_text="csvw-eo JSON"))
FLAGS = [
    OpenApiParameter(flag, bool, OpenApiParameter.QUERY, required=False) for flag in ("clean", "overwrite", "dry_run")
]

# Error answers a route may give besides its success, by what the route is.
USER_ERRORS = {400: INVALID, 403: UNAUTHORIZED, 500: INTERNAL}
SUBMIT_RESPONSES = {202: JobSerializer, **USER_ERRORS, 429: SUBMIT_LIMIT, 503: UNAVAILABLE}
STATUS_RESPONSES = {
    200: JobSerializer,
    400: OpenApiResponse(
        {"anyOf": [{"$ref": "#/components/schemas/Job"}, {"$ref": "#/components/schemas/InvalidQueryException"}]},
        description="A failed job, or an invalid uid (InvalidQueryException)",
    ),
    403: OpenApiResponse(
        {
            "anyOf": [
                {"$ref": "#/components/schemas/Job"},
                {"$ref": "#/components/schemas/UnauthorizedAccessException"},
            ]
        },
        description="A failed job, or another user's job (UnauthorizedAccessException)",
    ),
    404: OpenApiResponse(DetailSerializer, description="This job does not exist (or was already handed out)."),
    422: OpenApiResponse(JobSerializer, description="A job the DP library refused"),
    500: OpenApiResponse(
        {
            "anyOf": [
                {"$ref": "#/components/schemas/Job"},
                {"$ref": "#/components/schemas/InternalServerException"},
            ]
        },
        description="A job that failed internally, or an internal error",
    ),
}


def _admin(success: Any, *, body: bool = False) -> dict[int, Any]:
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
        if getattr(self.view, "library", ""):
            return [self.view.library]
        module = type(self.view).__module__
        if module.endswith("admin_api"):
            return ["admin"]
        return ["service" if module == "lomas.views" else "researcher"]

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
        responses.setdefault("500", self._get_response_for_code(INTERNAL, "500", direction=direction))
        return responses


class BearerScheme(OpenApiAuthenticationExtension):
    """Bearer tokens from /o/token (OAuth2 password or device grant of the public client `lomas_client`)."""

    target_class = "accounts.authentication.LomasBearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from /o/token, or from the external identity provider if one is set.",
        }


def document(target: str, **methods: dict[str, Any]) -> None:
    """Document a view of another app: `methods` maps get/post/... to extend_schema arguments."""

    class _Documented(OpenApiViewExtension):
        target_class = target

        def view_replacement(self) -> type:
            attributes = {"__doc__": self.target.__doc__, "__module__": self.target.__module__}
            subclass = type(self.target.__name__, (self.target,), attributes)
            decorators = {method: extend_schema(**kwargs) for method, kwargs in methods.items()}
            return extend_schema_view(**decorators)(subclass)

    _Documented.__name__ = f"Documented{target.rsplit('.', 1)[-1]}"


document("lomas.views.LiveApi", get={"responses": {200: _body("Live", status=serializers.CharField())}})
HEALTH = _body(
    "Health",
    status=serializers.ChoiceField(choices=["healthy", "unhealthy"]),
    database=serializers.ChoiceField(choices=["ok", "down"]),
    broker=serializers.ChoiceField(choices=["ok", "down"]),
)
document("lomas.views.HealthApi", get={"responses": {200: HEALTH, 503: HEALTH}})
document("lomas.views.StateApi", get={"responses": _admin(_body("State", state=serializers.CharField()))})
document(
    "lomas.views.ConfigApi",
    get={"responses": _admin(_body("Config", config=serializers.DictField(help_text="No secret is shown")))},
)
for _view, _success in [
    ("datasets.views.DatasetMetadataApi", METADATA),
    ("datasets.views.DummyDatasetApi", DUMMY),
    ("budgets.views.InitialBudgetApi", INITIAL_BUDGET),
    ("budgets.views.SpentBudgetApi", SPENT_BUDGET),
    ("budgets.views.RemainingBudgetApi", REMAINING_BUDGET),
]:
    _request = None if _view.endswith("DummyDatasetApi") else DatasetRequestSerializer
    document(_view, post={**({"request": _request} if _request else {}), "responses": {200: _success, **USER_ERRORS}})

document(
    "accounts.admin_api.UsersApi",
    get={"responses": _admin(UserSerializer(many=True))},
    post={"responses": _admin(NULL, body=True)},
)
document(
    "accounts.admin_api.UsersFileApi",
    post={"request": {"multipart/form-data": UPLOAD}, "parameters": FLAGS, "responses": _admin(CHANGES, body=True)},
)
document("accounts.admin_api.UserDeleteApi", delete={"responses": _admin(NULL)})
document("accounts.admin_api.UserArchiveApi", get={"responses": _admin(ArchiveSerializer(many=True))})
document(
    "accounts.admin_api.UserDatasetAddApi",
    patch={"request": DatasetRequestSerializer, "responses": _admin(NULL, body=True)},
)
document("accounts.admin_api.UserDatasetRevokeApi", patch={"responses": _admin(NULL, body=True)})
document("accounts.admin_api.UserBudgetApi", patch={"responses": _admin(NULL, body=True)})
document("accounts.admin_api.CollectionDropApi", delete={"responses": _admin(NULL, body=True)})
document(
    "datasets.admin_api.DatasetListApi",
    get={"responses": _admin(OpenApiResponse({"type": "array", "items": {"type": "string"}}, description="Names"))},
)
document("datasets.admin_api.DatasetAddApi", post={"responses": _admin(NULL, body=True)})
document(
    "datasets.admin_api.DatasetBulkApi",
    post={"request": {"multipart/form-data": UPLOAD}, "parameters": FLAGS, "responses": _admin(CHANGES, body=True)},
)
document(
    "datasets.admin_api.DatasetDetailApi",
    get={"responses": _admin(DatasetInfoSerializer, body=True)},
    delete={"responses": _admin(NULL, body=True)},
)
document(
    "datasets.admin_api.DatasetMetadataAdminApi",
    get={"responses": _admin(METADATA, body=True)},
    patch={"request": {"multipart/form-data": METADATA_UPLOAD}, "responses": _admin(NULL, body=True)},
)
