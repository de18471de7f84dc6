"""Service routes open to all: /, /live, /health (spec §1.3); /state and /config are in lomas/console/views.py."""

from django.http import HttpRequest, HttpResponseRedirect
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lomas.openapi import inline_body
from lomas.selectors import broker_ok, database_ok

LIVE = inline_body("Live", status=serializers.CharField())
HEALTH = inline_body(
    "Health",
    status=serializers.ChoiceField(choices=["healthy", "unhealthy"]),
    database=serializers.ChoiceField(choices=["ok", "down"]),
    broker=serializers.ChoiceField(choices=["ok", "down"]),
)


def root(request: HttpRequest) -> HttpResponseRedirect:
    """GET / → the state route."""
    return HttpResponseRedirect("state", status=307)


class LiveApi(APIView):
    """GET /live: the web process answers."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(tags=["service"], responses={200: LIVE})
    def get(self, request: Request) -> Response:
        return Response({"status": "alive"})


class HealthApi(APIView):
    """GET /health: the database and the job broker answer (503 if not)."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(tags=["service"], responses={200: HEALTH, 503: HEALTH})
    def get(self, request: Request) -> Response:
        checks = {"database": database_ok(), "broker": broker_ok()}
        healthy = all(checks.values())
        body = {
            "status": "healthy" if healthy else "unhealthy",
            **{k: "ok" if v else "down" for k, v in checks.items()},
        }
        return Response(body, status=200 if healthy else 503)
