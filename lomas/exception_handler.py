"""The one place where exceptions become HTTP answers in the lomas error shape."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from lomas.errors import (
    BAD_TOKEN,
    InternalServerError,
    InvalidQuery,
    LomasError,
    ServiceUnavailable,
    UnauthorizedAccess,
)

logger = logging.getLogger("lomas.errors")


class UnsupportedBody(InvalidQuery):
    """A body that is not JSON on a JSON route (415), as lomas refuses anything but JSON."""

    status = 415


# What a 503 (database or job broker unreachable) suggests to wait before trying again.
RETRY_AFTER_SECONDS = 5


def lomas_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Translate an exception raised in a DRF view into a lomas answer.

    Authentication failures are 403 UnauthorizedAccessException and unreadable
    bodies 400 InvalidQueryException (lomas clients parse both, where the reference
    server's framework errors are opaque to them); lomas errors carry their own
    status and body; a database, job broker or cache that cannot be reached is a 503 with
    the body of a 500 (the client may retry); the rest is a bare 500.
    """
    if isinstance(exc, OperationalError | InterfaceError | BrokerError | RedisConnectionError | RedisTimeoutError):
        exc = ServiceUnavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc = UnauthorizedAccess(BAD_TOKEN)
    if isinstance(exc, RequestDataTooBig):
        exc = InvalidQuery(
            f"Invalid request: the body is too large (more than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)."
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        exc = UnsupportedBody(f"Invalid request: {exc.detail} The API takes JSON bodies only.")
    if isinstance(exc, exceptions.ParseError):
        exc = InvalidQuery(f"Invalid request: {exc.detail}")
    if isinstance(exc, LomasError):
        if exc.status >= 500:
            logger.error("internal error: %s", exc.message, exc_info=exc)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(exc, ServiceUnavailable) else None
        return Response(exc.to_wire(), status=exc.status, headers=headers)
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.error("unhandled error", exc_info=exc)
        return Response(InternalServerError().to_wire(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return response


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: errors outside DRF views also answer in the lomas shape."""
    return JsonResponse(InternalServerError().to_wire(), status=500)


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    """handler404: an unknown route answers JSON, as the reference server does."""
    return JsonResponse({"detail": "Not Found"}, status=404)
