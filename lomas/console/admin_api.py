"""Admin API route that spans the apps: emptying a named collection (spec §1.6)."""

from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.admin_api import AdminApi
from lomas.console.collections import collection_drop
from lomas.openapi import NULL, admin_responses
from lomas.requests import null_response


class CollectionDropApi(AdminApi):
    """DELETE /collections/{collection_name}: empty users (researchers), datasets or queries_archive."""

    @extend_schema(tags=["admin"], responses=admin_responses(NULL, body=True))
    def delete(self, request: Request, collection_name: str) -> Response | JsonResponse:
        collection_drop(actor=request.user, name=collection_name)
        return null_response()
