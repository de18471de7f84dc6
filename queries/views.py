"""DP routes: submit a job (202), poll its status, read the query history."""

import time
from uuid import UUID

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.selectors import access_check
from datasets.connectors import get_connector
from datasets.selectors import dummy_check_rows
from lomas import notify
from lomas.openapi import (
    SUBMIT_LIMIT,
    UNAVAILABLE,
    USER_ERRORS,
    DetailSerializer,
    NullableObjectField,
)
from lomas.rate_limit import submit_limit_check
from lomas.requests import DatasetRequestSerializer, parse_body, parse_job_uid
from lomas.timing import pad_result, submission_timing
from queries.libraries import ADAPTERS, get_request_serializer
from queries.models import Job
from queries.selectors import archive_list_for_user, job_get_for_user, job_is_in_progress, job_to_wire
from queries.services import job_collect, job_submit, job_wake_up_name


class JobSerializer(serializers.Serializer):
    """A DP job: 202 at submission, then its state at /status/{uid}."""

    uid = serializers.UUIDField()
    requested_by = serializers.CharField()
    status = serializers.ChoiceField(choices=["in_progress", "complete", "failed"])
    result = NullableObjectField(help_text="QueryResponse or CostResponse once complete")
    error = NullableObjectField(help_text="The lomas error of a failed job")
    status_code = serializers.IntegerField()


class ArchiveSerializer(serializers.Serializer):
    """An archived real query (spec §2.6)."""

    user_name = serializers.CharField()
    dataset_name = serializers.CharField()
    dp_library = serializers.CharField()
    dp_librairy = serializers.CharField(help_text="The same, spelt as lomas ≤0.4 clients read it")
    client_input = serializers.JSONField()
    response = serializers.JSONField()
    timestamp = serializers.FloatField()


class PreviousQueriesSerializer(serializers.Serializer):
    previous_queries = ArchiveSerializer(many=True)


def _job_or(error: str, description: str) -> OpenApiResponse:
    return OpenApiResponse(
        {"anyOf": [{"$ref": "#/components/schemas/Job"}, {"$ref": f"#/components/schemas/{error}"}]},
        description=description,
    )


SUBMIT_RESPONSES = {202: JobSerializer, **USER_ERRORS, 429: SUBMIT_LIMIT, 503: UNAVAILABLE}
STATUS_RESPONSES = {
    200: JobSerializer,
    400: _job_or("InvalidQueryException", "A failed job (InvalidQueryException)"),
    403: _job_or("UnauthorizedAccessException", "A failed job, or another user's job (UnauthorizedAccessException)"),
    404: OpenApiResponse(DetailSerializer, description="This job does not exist (or was already handed out)."),
    422: _job_or("InvalidQueryException", "A job the DP library refused, or an invalid uid (InvalidQueryException)"),
    500: _job_or("InternalServerException", "A job that failed internally, or an internal error"),
}


class DPSubmitApi(APIView):
    """POST /<library>_query, /dummy_<library>_query, /estimate_<library>_cost."""

    library = ""
    kind = ""

    def get_serializer_class(self) -> type[serializers.Serializer]:
        """The request shape of this route (the OpenAPI schema reads it too)."""
        return get_request_serializer(self.library, self.kind)

    @extend_schema(responses=SUBMIT_RESPONSES)
    def post(self, request: Request) -> Response:
        with submission_timing():
            submit_limit_check(user_id=request.user.pk, user_name=request.user.get_username())
            body = parse_body(self.get_serializer_class(), request)
            dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
            if self.kind == Job.Kind.DUMMY:
                dummy_check_rows(nb_rows=body["dummy_nb_rows"])
            else:
                get_connector(dataset)  # a source that cannot be reached is a 500 now, not in the worker
            job = job_submit(
                user=request.user, dataset=dataset, library=self.library, kind=self.kind, request_body=body
            )
        return Response(job_to_wire(job), status=status.HTTP_202_ACCEPTED)


class JobStatusApi(APIView):
    """GET /status/<uid>: waits briefly for a running job so fast queries answer at the first poll.

    The wait re-reads only the job's status column (a primary-key lookup) when the job's end
    wakes it, and otherwise first every few milliseconds and then less often: a waiting request
    holds one gunicorn thread and its database connection, and no CPU.
    """

    first_poll_interval = 0.005
    max_poll_interval = 0.1
    poll_backoff = 1.5

    @extend_schema(
        tags=["researcher"],
        parameters=[OpenApiParameter("uid", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses=STATUS_RESPONSES,
    )
    def get(self, request: Request, uid: str) -> Response:
        job_uid = parse_job_uid(uid)
        job = job_get_for_user(uid=job_uid, user=request.user)
        if job.status == Job.Status.IN_PROGRESS and self._wait_while_in_progress(job_uid):
            job = job_get_for_user(uid=job_uid, user=request.user)
        if job.status != Job.Status.IN_PROGRESS:
            pad_result(submitted_at=job.created_at, finished_at=job.finished_at)
        body, status_code = job_collect(job=job)
        return Response(body, status=status_code)

    def _wait_while_in_progress(self, job_uid: UUID) -> bool:
        """Wait up to LOMAS_STATUS_WAIT_SECONDS for the job to leave "in_progress"; True if it did.

        The job's end wakes the wait at once where it can (lomas.notify); the polls remain, for a
        wake-up that cannot come (no Redis) or was taken by another status request of the job.
        """
        deadline = time.monotonic() + settings.LOMAS_STATUS_WAIT_SECONDS
        interval = self.first_poll_interval
        while (remaining := deadline - time.monotonic()) > 0:
            notify.wait(job_wake_up_name(job_uid), timeout=min(interval, remaining))
            interval = min(interval * self.poll_backoff, self.max_poll_interval)
            if not job_is_in_progress(uid=job_uid):
                return True
        return False


class PreviousQueriesApi(APIView):
    """POST /get_previous_queries: the archive of the user's real queries on a dataset.

    `dp_libraries` (optional, not sent by lomas-client 0.5.1) lists the libraries to include;
    by default, those lomas-client 0.5.1 can decode.
    """

    class InputSerializer(DatasetRequestSerializer):
        dp_libraries = serializers.ListField(
            child=serializers.ChoiceField(choices=sorted(ADAPTERS)), required=False, allow_empty=False
        )

    @extend_schema(tags=["researcher"], responses={200: PreviousQueriesSerializer, **USER_ERRORS})
    def post(self, request: Request) -> Response:
        body = parse_body(self.InputSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        archives = archive_list_for_user(user=request.user, dataset=dataset, libraries=body.get("dp_libraries"))
        return Response({"previous_queries": archives})
