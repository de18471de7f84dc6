"""A researcher's routes behind dataset access (spec §1.4): the dataset's metadata and dummy data, the budgets."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.models import Budget
from budgets.selectors import access_check, budget_get
from datasets.dummy import frame_to_wire, make_dummy_frame
from datasets.metadata import metadata_to_wire
from datasets.selectors import dummy_check_rows
from lomas.openapi import METADATA, USER_ERRORS, inline_body
from lomas.requests import DUMMY_SEED_MAX, DatasetRequestSerializer, parse_body

DUMMY = inline_body(
    "DummyDataset",
    dtypes=serializers.DictField(child=serializers.CharField()),
    dummy_df=serializers.JSONField(help_text='pandas to_dict(orient="tight")'),
)
INITIAL_BUDGET = inline_body(
    "InitialBudget", initial_epsilon=serializers.FloatField(), initial_delta=serializers.FloatField()
)
SPENT_BUDGET = inline_body(
    "SpentBudget", total_spent_epsilon=serializers.FloatField(), total_spent_delta=serializers.FloatField()
)
REMAINING_BUDGET = inline_body(
    "RemainingBudget", remaining_epsilon=serializers.FloatField(), remaining_delta=serializers.FloatField()
)


class DatasetMetadataApi(APIView):
    """POST /get_dataset_metadata: the csvw-eo TableMetadata dump."""

    @extend_schema(tags=["researcher"], request=DatasetRequestSerializer, responses={200: METADATA, **USER_ERRORS})
    def post(self, request: Request) -> Response:
        body = parse_body(DatasetRequestSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        return Response(metadata_to_wire(dataset.metadata))


class DummyDatasetApi(APIView):
    """POST /get_dummy_dataset: a seeded dummy frame generated from the metadata only."""

    class InputSerializer(DatasetRequestSerializer):
        dummy_nb_rows = serializers.IntegerField(min_value=1)
        dummy_seed = serializers.IntegerField(min_value=0, max_value=DUMMY_SEED_MAX)

    @extend_schema(tags=["researcher"], responses={200: DUMMY, **USER_ERRORS})
    def post(self, request: Request) -> Response:
        body = parse_body(self.InputSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        dummy_check_rows(nb_rows=body["dummy_nb_rows"])
        frame = make_dummy_frame(dataset.metadata, nb_rows=body["dummy_nb_rows"], seed=body["dummy_seed"])
        return Response(frame_to_wire(frame))


class _BudgetApi(APIView):
    def budget(self, request: Request) -> Budget:
        body = parse_body(DatasetRequestSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        return budget_get(user=request.user, dataset=dataset)


class InitialBudgetApi(_BudgetApi):
    """POST /get_initial_budget."""

    @extend_schema(
        tags=["researcher"], request=DatasetRequestSerializer, responses={200: INITIAL_BUDGET, **USER_ERRORS}
    )
    def post(self, request: Request) -> Response:
        budget = self.budget(request)
        return Response(
            {"initial_epsilon": float(budget.initial_epsilon), "initial_delta": float(budget.initial_delta)}
        )


class SpentBudgetApi(_BudgetApi):
    """POST /get_total_spent_budget."""

    @extend_schema(tags=["researcher"], request=DatasetRequestSerializer, responses={200: SPENT_BUDGET, **USER_ERRORS})
    def post(self, request: Request) -> Response:
        budget = self.budget(request)
        return Response(
            {"total_spent_epsilon": float(budget.spent_epsilon), "total_spent_delta": float(budget.spent_delta)}
        )


class RemainingBudgetApi(_BudgetApi):
    """POST /get_remaining_budget."""

    @extend_schema(
        tags=["researcher"], request=DatasetRequestSerializer, responses={200: REMAINING_BUDGET, **USER_ERRORS}
    )
    def post(self, request: Request) -> Response:
        budget = self.budget(request)
        return Response(
            {"remaining_epsilon": float(budget.remaining_epsilon), "remaining_delta": float(budget.remaining_delta)}
        )
