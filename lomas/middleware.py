"""Observability of HTTP requests: a metric sample, a server span and a log scope per request."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from opentelemetry import propagate
from opentelemetry.trace import SpanKind

from lomas import logs, metrics
from lomas.tracing import tracer

UNMATCHED_ROUTE = "unmatched"


class _MetaGetter:
    """Reads W3C trace headers (traceparent, tracestate) from a WSGI environ."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        value = carrier.get(f"HTTP_{key.upper().replace('-', '_')}")
        return [value] if value else None

    def keys(self, carrier: dict) -> list[str]:
        return []


_META_GETTER = _MetaGetter()


class RequestObservabilityMiddleware:
    """Counts and times each request by URL route name (never the raw path), traces it and scopes its logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        parent = propagate.extract(request.META, getter=_META_GETTER)
        with (
            logs.scope(request),
            tracer.start_as_current_span(request.method or "HTTP", context=parent, kind=SpanKind.SERVER) as span,
        ):
            metrics.HTTP_REQUESTS_IN_PROGRESS.inc()
            try:
                response = self.get_response(request)
            finally:
                metrics.HTTP_REQUESTS_IN_PROGRESS.dec()
            match = request.resolver_match
            route = match.view_name if match else UNMATCHED_ROUTE
            span.update_name(f"{request.method} {match.route if match else UNMATCHED_ROUTE}")
            span.set_attributes(
                {
                    "http.request.method": request.method or "",
                    "http.route": match.route if match else "",
                    "http.response.status_code": response.status_code,
                    "lomas.route": route,
                }
            )
            user = logs.current().get("user")
            if user:
                span.set_attribute("lomas.user", user)
        metrics.observe_http_request(
            route=route, method=request.method or "", status=response.status_code, seconds=time.perf_counter() - started
        )
        return response
