"""Request parsing shared by every API route, and the request shapes the library adapters build on.

Serializers only check shapes; a malformed body answers 400 InvalidQueryException
naming each bad field, which lomas clients can decode.
"""

from typing import IO, Any
from uuid import UUID

from django.http import JsonResponse
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request

from lomas.errors import InvalidQuery

# Deepest nesting of arrays and objects a JSON body may have (lomas bodies need fewer than ten levels).
MAX_JSON_DEPTH = 64
TOO_DEEP = f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep."


def json_depth(value: Any, *, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply arrays and objects nest in a parsed JSON value, counted without recursion up to limit + 1."""
    depth, level = 0, [value]
    while containers := [item for item in level if isinstance(item, dict | list)]:
        depth += 1
        if depth > limit:
            break
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
    return depth


class LomasJSONParser(JSONParser):
    """The only parser of API routes: JSON nested at most MAX_JSON_DEPTH deep (deeper is a 400, not a 500)."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # the decoder gives up on very deep nesting before we can count it
            raise ParseError(TOO_DEEP) from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(TOO_DEEP)
        return data


# The routes that take a file upload (a YAML collection, a metadata file) read multipart forms instead.
UPLOAD_PARSERS = (MultiPartParser,)


def _describe(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        return [item for key, value in errors.items() for item in _describe(value, f"{prefix}{key}: ")]
    if isinstance(errors, list):
        return [item for value in errors for item in _describe(value, prefix)]
    return [f"{prefix}{errors}"]


def parse_body(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The validated body, or InvalidQuery listing every problem."""
    data = request.data
    if not isinstance(data, dict):
        raise InvalidQuery("Invalid request: the body must be a JSON object.")
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidQuery("Invalid request: " + "; ".join(_describe(serializer.errors)))
    return dict(serializer.validated_data)


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


class InvalidJobUid(InvalidQuery):
    """A job uid that is not a UUID: 422, the status lomas gives (its framework validates the path)."""

    status = 422


def parse_job_uid(uid: str) -> UUID:
    """The job uid of a status route, or 422."""
    try:
        return UUID(uid)
    except ValueError:
        raise InvalidJobUid(f"Invalid job uid: {uid!r} is not a UUID.") from None


def request_flag(request: Request, name: str, *, default: bool) -> bool:
    """A boolean from the query string (lomas 0.5) or the form (later lomas), or the default."""
    raw: Any = request.query_params.get(name, request.data.get(name) if hasattr(request.data, "get") else None)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in _TRUE:
        return True
    if str(raw).lower() in _FALSE:
        return False
    raise InvalidQuery(f"Invalid request: {name} must be true or false, not {raw!r}.")


def uploaded_file(request: Request, name: str = "file") -> bytes:
    """The content of a multipart upload, or 400 naming the missing field."""
    upload = request.FILES.get(name)
    if upload is None:
        raise InvalidQuery(f"Invalid request: a multipart '{name}' upload is required.")
    return upload.read()


def null_response() -> JsonResponse:
    """200 with the JSON body `null`: what every admin mutation answers (DRF would send an empty body)."""
    return JsonResponse(None, safe=False)


# numpy seeds are 0 .. 2**32 - 1: dummy data generators refuse any other.
DUMMY_SEED_MAX = 2**32 - 1


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers, as the reference server's models do (DRF would turn 0 into "0")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false: no 0, 1 or "true" (DRF would read them as booleans)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class DatasetRequestSerializer(serializers.Serializer):
    """LomasRequestModel: every user route names a dataset."""

    dataset_name = StrictCharField()


class StrictFloatField(serializers.FloatField):
    """A JSON number: no string ("0.1"), no boolean (True would count as 1.0); DRF refuses NaN and infinity."""

    default_error_messages = {"invalid": "A number is required."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class PositiveFloatField(StrictFloatField):
    """A number strictly greater than zero (pydantic's gt=0): an epsilon."""

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not value > 0:
            raise serializers.ValidationError("Ensure this value is greater than 0.")
        return value


class DeltaField(StrictFloatField):
    """A delta: a number in [0, 1). A delta of 1 or more promises nothing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, **kwargs)

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not value < 1:
            raise serializers.ValidationError("Ensure this value is less than 1.")
        return value


class DummyFieldsMixin(serializers.Serializer):
    """DummyQueryModel: size and seed of the dummy dataset."""

    dummy_nb_rows = serializers.IntegerField(min_value=1)
    dummy_seed = serializers.IntegerField(min_value=0, max_value=DUMMY_SEED_MAX)
