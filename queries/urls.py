"""Query routes, named exactly as the wire paths (no trailing slash)."""

from django.urls import path

from queries.libraries import ADAPTERS
from queries.views import DPSubmitApi, JobStatusApi, PreviousQueriesApi

urlpatterns = [
    path("status/<str:uid>", JobStatusApi.as_view(), name="status"),
    path("get_previous_queries", PreviousQueriesApi.as_view(), name="get_previous_queries"),
]
for library in ADAPTERS:
    urlpatterns += [
        path(f"{library}_query", DPSubmitApi.as_view(library=library, kind="query"), name=f"{library}_query"),
        path(
            f"dummy_{library}_query",
            DPSubmitApi.as_view(library=library, kind="dummy"),
            name=f"dummy_{library}_query",
        ),
        path(
            f"estimate_{library}_cost",
            DPSubmitApi.as_view(library=library, kind="cost"),
            name=f"estimate_{library}_cost",
        ),
    ]
