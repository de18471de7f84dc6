"""OpenTelemetry traces across the web and worker processes, with thin helpers for call sites.

Spans are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, with the exporter's standard OTEL_*
variables; otherwise no tracer provider is installed and every span is a no-op.
The context of a job's submission travels to the worker in the Celery message
headers (W3C traceparent), so a job's spans are children of its HTTP request.
"""

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast

from celery import Task
from celery.signals import before_task_publish, task_postrun, task_prerun
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

P = ParamSpec("P")
R = TypeVar("R")
Adapter = TypeVar("Adapter")

tracer = trace.get_tracer("lomas")

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
DEFAULT_SERVICE_NAME = "lomas"


def configure() -> None:
    """Install the OTLP/HTTP exporter if an endpoint is configured (once per process)."""
    if not any(os.environ.get(name) for name in OTLP_ENDPOINT_VARIABLES):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    service_name = os.environ.get("OTEL_SERVICE_NAME", DEFAULT_SERVICE_NAME)
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def _attributes(values: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """Span attributes under the lomas. prefix (user, dataset, library, job, kind...)."""
    return {
        f"lomas.{key}": value if isinstance(value, str | int | float | bool) else str(value)
        for key, value in values.items()
        if value is not None
    }


def annotate(**values: Any) -> None:
    """Set lomas.<name> attributes on the current span."""
    trace.get_current_span().set_attributes(_attributes(values))


@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **values: Any) -> Iterator[Span]:
    """A child span of the current one, with lomas.<name> attributes."""
    with tracer.start_as_current_span(name, kind=kind, attributes=_attributes(values)) as current:
        yield current


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function to run in a span of that name."""

    def decorator(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with tracer.start_as_current_span(name):
                return function(*args, **kwargs)

        return wrapper

    return decorator


def later_in_span(name: str, function: Callable[[], None]) -> Callable[[], None]:
    """`function` to be called later (after a commit) in a producer span that is a child of the current span."""
    parent = otel_context.get_current()

    def run() -> None:
        with tracer.start_as_current_span(name, context=parent, kind=SpanKind.PRODUCER):
            function()

    return run


def trace_adapter(adapter: Adapter) -> Adapter:
    """The adapter, its validate(), cost(), rehearse() and run() called from outside each recorded as a span."""
    return cast(Adapter, _TracedAdapter(adapter))


class _TracedAdapter:
    """Delegates to an adapter; the adapter's own calls between its methods are not spans."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter
        self._library = getattr(adapter, "library", "")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with span(f"adapter.{method}", library=self._library):
            return getattr(self._adapter, method)(*args, **kwargs)

    def validate(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("validate", *args, **kwargs)

    def cost(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("cost", *args, **kwargs)

    def rehearse(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("rehearse", *args, **kwargs)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("run", *args, **kwargs)


class _TaskRequestGetter:
    """Reads propagation headers from a Celery task request (message headers become its attributes)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None) or (getattr(carrier, "headers", None) or {}).get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Any) -> list[str]:
        return []


_TASK_REQUEST_GETTER = _TaskRequestGetter()
_task_spans: dict[str, tuple[Span, object]] = {}


def _inject_into_message(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        propagate.inject(headers)


def _start_task_span(task_id: str, task: Task, **_: Any) -> None:
    parent = propagate.extract(task.request, context=otel_context.get_current(), getter=_TASK_REQUEST_GETTER)
    delivery = getattr(task.request, "delivery_info", None) or {}
    current = tracer.start_span(
        f"celery.run {task.name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "celery",
            "messaging.message.id": task_id,
            "messaging.destination.name": delivery.get("routing_key") or "",
        },
    )
    token = otel_context.attach(trace.set_span_in_context(current, parent))
    _task_spans[task_id] = (current, token)


def _end_task_span(task_id: str, state: str | None = None, **_: Any) -> None:
    entry = _task_spans.pop(task_id, None)
    if entry is None:
        return
    current, token = entry
    current.set_attribute("celery.state", state or "")
    otel_context.detach(token)
    current.end()


def instrument_celery() -> None:
    """Carry the trace context in task messages and record each task run as a span."""
    before_task_publish.connect(_inject_into_message, weak=False, dispatch_uid="lomas.tracing.publish")
    task_prerun.connect(_start_task_span, weak=False, dispatch_uid="lomas.tracing.prerun")
    task_postrun.connect(_end_task_span, weak=False, dispatch_uid="lomas.tracing.postrun")
