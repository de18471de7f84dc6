"""The admin API's base (admin scope only) and its route on accounts alone (spec §1.6).

Mutations answer 200 with a null body, as the reference server does.
"""

from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.bootstrap import BootstrapGone
from accounts.permissions import IsLomasAdmin
from accounts.selectors import bootstrap_is_active, user_get_by_name
from accounts.services import bootstrap_disable, user_delete
from lomas.openapi import GONE, NULL, admin_responses
from lomas.requests import null_response


class AdminApi(APIView):
    """An admin-scope route: 403 'Only admin users can query this endpoint.' for everyone else."""

    permission_classes = (IsLomasAdmin,)


class UserDeleteApi(AdminApi):
    """DELETE /users/{username}: delete a user (a tombstone: their budgets revoked, their ledgers kept)."""

    @extend_schema(tags=["admin"], responses=admin_responses(NULL))
    def delete(self, request: Request, username: str) -> Response | JsonResponse:
        user_delete(actor=request.user, user=user_get_by_name(username=username))
        return null_response()


class BootstrapApi(AdminApi):
    """GET /bootstrap: 200 while the bootstrap identity is active, else 410. DELETE: disable it for good (or 410)."""

    @extend_schema(tags=["admin"], responses={**admin_responses(NULL), 410: GONE})
    def get(self, request: Request) -> Response | JsonResponse:
        if not bootstrap_is_active():
            raise BootstrapGone()
        return null_response()

    @extend_schema(tags=["admin"], responses={**admin_responses(NULL), 410: GONE})
    def delete(self, request: Request) -> Response | JsonResponse:
        bootstrap_disable(actor=request.user)
        return null_response()
