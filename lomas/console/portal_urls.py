"""The researcher portal's pages (under /portal/)."""

from django.urls import path

from lomas.console.portal import dummy_csv, portal

urlpatterns = [
    path("", portal, name="portal"),
    path("datasets/<str:dataset_name>/dummy.csv", dummy_csv, name="portal-dummy-csv"),
]
