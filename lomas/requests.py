"""Request parsing shared by every API route, and the request shapes the library adapters build on.

Serializers only check shapes; a malformed body answers 400 InvalidQueryException
naming each bad field, which lomas clients can decode.
"""

from typing import Any

from django.http import JsonResponse
from rest_framework import serializers
from rest_framework.request import Request

from lomas.errors import InvalidQuery


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


class DatasetRequestSerializer(serializers.Serializer):
    """LomasRequestModel: every user route names a dataset."""

    dataset_name = StrictCharField()


class PositiveFloatField(serializers.FloatField):
    """A float strictly greater than zero (pydantic's gt=0)."""

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not value > 0:
            raise serializers.ValidationError("Ensure this value is greater than 0.")
        return value


class DummyFieldsMixin(serializers.Serializer):
    """DummyQueryModel: size and seed of the dummy dataset."""

    dummy_nb_rows = serializers.IntegerField(min_value=1)
    dummy_seed = serializers.IntegerField(min_value=0, max_value=DUMMY_SEED_MAX)
