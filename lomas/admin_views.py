"""Shared pieces of the admin API views (spec §1.6): admin scope, uploaded files, boolean flags."""

from typing import Any

from django.http import JsonResponse
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.permissions import IsLomasAdmin
from lomas.errors import InvalidQuery

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


class AdminApi(APIView):
    """An admin-scope route: 403 'Only admin users can query this endpoint.' for everyone else."""

    permission_classes = (IsLomasAdmin,)


def request_flag(request: Request, name: str, *, default: bool) -> bool:
    """A boolean from the query string (lomas 0.5) or the form (later lomas), or the default."""
    raw: Any = request.query_params.get(name, request.data.get(name) if hasattr(request.data, "get") else None)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in _TRUE:
        return True
    if str(raw).lower() in _FALSE:
        return False
    raise InvalidQuery(f"Invalid request: {name} must be true or false, not {raw!r}.")


def uploaded_file(request: Request, name: str = "file") -> bytes:
    """The content of a multipart upload, or 400 naming the missing field."""
    upload = request.FILES.get(name)
    if upload is None:
        raise InvalidQuery(f"Invalid request: a multipart '{name}' upload is required.")
    return upload.read()


def null_response() -> JsonResponse:
    """200 with the JSON body `null`: what every admin mutation answers (DRF would send an empty body)."""
    return JsonResponse(None, safe=False)
