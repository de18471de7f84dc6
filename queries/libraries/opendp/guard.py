"""No unpickling while a user's plan is being handled.

Polars plans can carry pickled Python (map_batches, map_elements, ...), which polars
unpickles while deserializing or resolving the plan. Every pickle that could run code
must look up a global, which raises the `pickle.find_class` audit event; a process-wide
audit hook refuses that event while any plan is being handled in this process. The
flag is process-wide because polars may unpickle on its own threads: plans are handled
in Celery prefork workers, one job per process. Audit hooks cannot be removed, so the
hook is installed once per process: at worker start, or on first use (eager mode, tests).
"""

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.signals import worker_process_init

from lomas.errors import InvalidQuery

PICKLE_REFUSED = "The plan embeds a Python object (a pickled function or UDF); the server never runs user code."


class PickleRefused(InvalidQuery):
    """A plan tried to unpickle a Python object."""

    def __init__(self) -> None:
        super().__init__(PICKLE_REFUSED)


class _GuardState:
    """How many plans this process is handling, and whether one tried to unpickle."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.installed = False
        self.active = 0
        self.refused = False


_STATE = _GuardState()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "pickle.find_class" and _STATE.active:
        _STATE.refused = True
        raise PickleRefused()


def install() -> None:
    """Add the audit hook to this process (once)."""
    with _STATE.lock:
        if not _STATE.installed:
            sys.addaudithook(_audit)
            _STATE.installed = True


@worker_process_init.connect
def _install_in_worker(**_: Any) -> None:
    install()


@contextmanager
def plan_handling() -> Iterator[None]:
    """Refuse any unpickling in this process while the block runs.

    Raises PickleRefused when the block tried to unpickle, whatever the library made of
    the hook's exception (re-raised, wrapped, or swallowed).
    """
    install()
    with _STATE.lock:
        if not _STATE.active:
            _STATE.refused = False
        _STATE.active += 1
    try:
        yield
    except BaseException as exc:
        if _STATE.refused:
            raise PickleRefused() from exc
        raise
    finally:
        with _STATE.lock:
            _STATE.active -= 1
            refused = _STATE.refused
    if refused:
        raise PickleRefused()
