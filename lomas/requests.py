"""Request-body validation shared by every API route.

Serializers only check shapes; a malformed body answers 400 InvalidQueryException
naming each bad field, which lomas clients can decode.
"""

from typing import Any

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
