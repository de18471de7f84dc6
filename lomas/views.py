"""Service routes: /, /live, /health, /state, /config (spec §1.3)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsLomasAdmin
from lomas.selectors import broker_ok, database_ok


def root(request: HttpRequest) -> HttpResponseRedirect:
    """GET / → the state route."""
    return HttpResponseRedirect("state", status=307)


class LiveApi(APIView):
    """GET /live: the web process answers."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    def get(self, request: Request) -> Response:
        return Response({"status": "alive"})


class HealthApi(APIView):
    """GET /health: the database and the job broker answer (503 if not)."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    def get(self, request: Request) -> Response:
        checks = {"database": database_ok(), "broker": broker_ok()}
        healthy = all(checks.values())
        body = {
            "status": "healthy" if healthy else "unhealthy",
            **{k: "ok" if v else "down" for k, v in checks.items()},
        }
        return Response(body, status=200 if healthy else 503)


class StateApi(APIView):
    """GET /state (lomas admins)."""

    permission_classes = (IsLomasAdmin,)

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
