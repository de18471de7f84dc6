"""Admin API route on the query archive (spec §1.6)."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.admin_api import AdminApi
from accounts.selectors import user_get_by_name
from lomas.openapi import admin_responses
from queries.selectors import archive_list_by_user_name
from queries.views import ArchiveSerializer


class UserArchiveApi(AdminApi):
    """GET /users/{username}/archive: the user's archived queries on every dataset."""

    @extend_schema(tags=["admin"], responses=admin_responses(ArchiveSerializer(many=True)))
    def get(self, request: Request, username: str) -> Response:
        return Response(archive_list_by_user_name(user_name=user_get_by_name(username=username).username))
