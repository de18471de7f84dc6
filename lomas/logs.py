"""Structured logs: the job id and user of the work in progress on every record.

A context variable holds the job and user bound by the code handling a request or a
job; each HTTP request and each Celery task gets a fresh scope. `ContextFilter` (on
the handlers of `settings.LOGGING`) copies them, and the current trace and span ids,
onto every record; `JsonFormatter` (LOMAS_LOG_FORMAT=json) writes one JSON object a
line, with the `extra` fields of the call.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from celery.signals import task_postrun, task_prerun
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from opentelemetry import trace

CONTEXT_FIELDS = ("job", "user")
_EMPTY: MappingProxyType[str, str] = MappingProxyType({})
_context: ContextVar[MappingProxyType[str, str]] = ContextVar("lomas_log_context", default=_EMPTY)
_request: ContextVar[HttpRequest | None] = ContextVar("lomas_log_request", default=None)

# Attributes every LogRecord has, plus those ContextFilter adds: the rest came from `extra`.
_RECORD_ATTRIBUTES = {
    *logging.makeLogRecord({}).__dict__,
    "message",
    "asctime",
    "context",
    "trace_id",
    "span_id",
    *CONTEXT_FIELDS,
}


def bind(**values: Any) -> None:
    """Attach job and/or user to the records logged from now on in this scope."""
    _context.set(MappingProxyType({**_context.get(), **{key: str(value) for key, value in values.items()}}))


@contextmanager
def scope(request: HttpRequest | None = None) -> Iterator[None]:
    """A fresh binding scope (one HTTP request or one job); a request's user is read once authenticated."""
    context_token = _context.set(_EMPTY)
    request_token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(request_token)
        _context.reset(context_token)


def current() -> dict[str, str]:
    """The job and user bound now (the request's authenticated user if none was bound)."""
    values = dict(_context.get())
    if "user" not in values:
        user = _request_user(_request.get())
        if user:
            values["user"] = user
    return values


def _request_user(request: HttpRequest | None) -> str:
    """The request's user name, without triggering authentication (an unresolved lazy user is skipped)."""
    if request is None:
        return ""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user.__dict__.get("_wrapped")
    return str(getattr(user, "username", "") or "")


class ContextFilter(logging.Filter):
    """Adds job, user, trace_id and span_id (empty when unknown), and a plain-text `context` suffix."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = current()
        for field in CONTEXT_FIELDS:
            setattr(record, field, values.get(field, ""))
        span_context = trace.get_current_span().get_span_context()
        record.trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else ""
        record.span_id = format(span_context.span_id, "016x") if span_context.is_valid else ""
        bound = " ".join(f"{field}={values[field]}" for field in CONTEXT_FIELDS if values.get(field))
        record.context = f" [{bound}]" if bound else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, job, user, trace ids, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in (*CONTEXT_FIELDS, "trace_id", "span_id"):
            value = getattr(record, field, "")
            if value:
                payload[field] = value
        payload.update({key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


_task_tokens: dict[str, Token] = {}


def _open_task_scope(task_id: str, **_: Any) -> None:
    _task_tokens[task_id] = _context.set(_EMPTY)


def _close_task_scope(task_id: str, **_: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _context.reset(token)


def instrument_celery() -> None:
    """Give each Celery task a fresh binding scope."""
    task_prerun.connect(_open_task_scope, weak=False, dispatch_uid="lomas.logs.prerun")
    task_postrun.connect(_close_task_scope, weak=False, dispatch_uid="lomas.logs.postrun")
