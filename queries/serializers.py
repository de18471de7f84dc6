"""Request shapes of the DP routes, one per (library, kind), as lomas-client 0.5.1 sends them.

Serializers check shapes only; what a field means for a dataset is checked by the
library adapter in the worker.
"""

from rest_framework import serializers

from lomas.requests import DatasetRequestSerializer


class DummyFieldsMixin(serializers.Serializer):
    """DummyQueryModel: size and seed of the dummy dataset."""

    dummy_nb_rows = serializers.IntegerField(min_value=1)
    dummy_seed = serializers.IntegerField()


class SmartnoiseSqlCostSerializer(DatasetRequestSerializer):
    """SmartnoiseSQLRequestModel."""

    query_str = serializers.CharField(trim_whitespace=False)
    epsilon = serializers.FloatField()
    delta = serializers.FloatField(min_value=0)
    mechanisms = serializers.DictField(child=serializers.CharField())

    def validate_epsilon(self, value: float) -> float:
        """Epsilon must be strictly positive."""
        if not value > 0:
            raise serializers.ValidationError("Ensure this value is greater than 0.")
        return value


class SmartnoiseSqlQuerySerializer(SmartnoiseSqlCostSerializer):
    """SmartnoiseSQLQueryModel."""

    postprocess = serializers.BooleanField()


class SmartnoiseSqlDummySerializer(DummyFieldsMixin, SmartnoiseSqlQuerySerializer):
    """SmartnoiseSQLDummyQueryModel."""


REQUEST_SERIALIZERS: dict[tuple[str, str], type[serializers.Serializer]] = {
    ("smartnoise_sql", "cost"): SmartnoiseSqlCostSerializer,
    ("smartnoise_sql", "query"): SmartnoiseSqlQuerySerializer,
    ("smartnoise_sql", "dummy"): SmartnoiseSqlDummySerializer,
}
