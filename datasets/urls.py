"""Dataset routes, named exactly as the wire paths."""

from django.urls import path

from datasets.views import DatasetMetadataApi, DummyDatasetApi

urlpatterns = [
    path("get_dataset_metadata", DatasetMetadataApi.as_view(), name="get_dataset_metadata"),
    path("get_dummy_dataset", DummyDatasetApi.as_view(), name="get_dummy_dataset"),
]
