"""DP routes: submit a job (202), poll its status, read the query history."""

import time
from uuid import UUID

from django.conf import settings
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.selectors import access_check
from datasets.connectors import get_connector
from datasets.selectors import dummy_check_rows
from lomas.errors import InvalidQuery
from lomas.requests import DatasetRequestSerializer, parse_body
from queries.libraries import ADAPTERS, get_request_serializer
from queries.models import Job
from queries.selectors import archive_list_for_user, job_get_for_user, job_to_wire
from queries.services import job_collect, job_submit


class DPSubmitApi(APIView):
    """POST /<library>_query, /dummy_<library>_query, /estimate_<library>_cost."""

    library = ""
    kind = ""

    def post(self, request: Request) -> Response:
        body = parse_body(get_request_serializer(self.library, self.kind), request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        if self.kind == Job.Kind.DUMMY:
            dummy_check_rows(nb_rows=body["dummy_nb_rows"])
        else:
            get_connector(dataset)  # a source that cannot be reached is a 500 now, not in the worker
        job = job_submit(user=request.user, dataset=dataset, library=self.library, kind=self.kind, request_body=body)
        return Response(job_to_wire(job), status=status.HTTP_202_ACCEPTED)


class JobStatusApi(APIView):
    """GET /status/<uid>: waits briefly for a running job so fast queries answer at the first poll."""

    poll_interval = 0.02

    def get(self, request: Request, uid: str) -> Response:
        try:
            job_uid = UUID(uid)
        except ValueError:
            raise InvalidQuery(f"Invalid job uid: {uid!r} is not a UUID.") from None
        job = job_get_for_user(uid=job_uid, user=request.user)
        deadline = time.monotonic() + settings.LOMAS_STATUS_WAIT_SECONDS
        while job.status == Job.Status.IN_PROGRESS and time.monotonic() < deadline:
            time.sleep(self.poll_interval)
            job.refresh_from_db(fields=["status", "result", "error", "status_code"])
        body, status_code = job_collect(job=job)
        return Response(body, status=status_code)


class PreviousQueriesApi(APIView):
    """POST /get_previous_queries: the archive of the user's real queries on a dataset.

    `dp_libraries` (optional, not sent by lomas-client 0.5.1) lists the libraries to include;
    by default, those lomas-client 0.5.1 can decode.
    """

    class InputSerializer(DatasetRequestSerializer):
        dp_libraries = serializers.ListField(
            child=serializers.ChoiceField(choices=sorted(ADAPTERS)), required=False, allow_empty=False
        )

    def post(self, request: Request) -> Response:
        body = parse_body(self.InputSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        archives = archive_list_for_user(user=request.user, dataset=dataset, libraries=body.get("dp_libraries"))
        return Response({"previous_queries": archives})
