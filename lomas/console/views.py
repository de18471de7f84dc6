"""Service routes of lomas admins: /state and /config (spec §1.3)."""

from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsLomasAdmin
from lomas.openapi import admin_responses, inline_body

STATE = inline_body("State", state=serializers.CharField())
CONFIG = inline_body("Config", config=serializers.DictField(help_text="No secret is shown"))


class StateApi(APIView):
    """GET /state (lomas admins)."""

    permission_classes = (IsLomasAdmin,)

    @extend_schema(tags=["service"], responses=admin_responses(STATE))
    def get(self, request: Request) -> Response:
        return Response({"state": "live"})


def _redacted_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class ConfigApi(APIView):
    """GET /config (lomas admins): the server configuration, with every secret left out."""

    permission_classes = (IsLomasAdmin,)

    @extend_schema(tags=["service"], responses=admin_responses(CONFIG))
    def get(self, request: Request) -> Response:
        database = settings.DATABASES["default"]
        return Response(
            {
                "config": {
                    "database": {"engine": database["ENGINE"].rsplit(".", 1)[-1], "name": str(database["NAME"])},
                    "broker": _redacted_url(settings.CELERY_BROKER_URL),
                    "eager_jobs": settings.CELERY_TASK_ALWAYS_EAGER,
                    "job_queues": settings.LOMAS_JOB_QUEUES,
                    "job_time_limit_seconds": settings.LOMAS_JOB_TIME_LIMIT,
                    "data_directory": str(settings.LOMAS_DATA_DIR),
                    "dummy_max_rows": settings.LOMAS_DUMMY_MAX_ROWS,
                    "status_wait_seconds": settings.LOMAS_STATUS_WAIT_SECONDS,
                    "s3_credentials_names": sorted(settings.LOMAS_S3_CREDENTIALS),
                    "debug": settings.DEBUG,
                }
            }
        )
