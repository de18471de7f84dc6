"""Request-shape building blocks shared by the library adapters' request serializers.

Serializers check shapes only; what a field means for a dataset is checked by the
adapter in the worker.
"""

from typing import Any

from rest_framework import serializers

from lomas.requests import DUMMY_SEED_MAX, DatasetRequestSerializer

__all__ = ["DatasetRequestSerializer", "DummyFieldsMixin", "PositiveFloatField"]


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
