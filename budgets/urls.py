"""A researcher's dataset and budget routes, named exactly as the wire paths."""

from django.urls import path

from budgets.views import (
    DatasetMetadataApi,
    DummyDatasetApi,
    InitialBudgetApi,
    RemainingBudgetApi,
    SpentBudgetApi,
)

urlpatterns = [
    path("get_dataset_metadata", DatasetMetadataApi.as_view(), name="get_dataset_metadata"),
    path("get_dummy_dataset", DummyDatasetApi.as_view(), name="get_dummy_dataset"),
    path("get_initial_budget", InitialBudgetApi.as_view(), name="get_initial_budget"),
    path("get_total_spent_budget", SpentBudgetApi.as_view(), name="get_total_spent_budget"),
    path("get_remaining_budget", RemainingBudgetApi.as_view(), name="get_remaining_budget"),
]
