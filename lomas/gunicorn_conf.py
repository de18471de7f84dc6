"""gunicorn settings hooks (`gunicorn lomas.wsgi -c python:lomas.gunicorn_conf ...`).

With PROMETHEUS_MULTIPROC_DIR set, the master prunes the sample files of processes
that no longer run when it starts, and drops a web worker's live gauges when it exits.
"""

from typing import Any


def on_starting(server: Any) -> None:
    """Before the first web worker starts."""
    from lomas.metrics import prune_dead_process_files

    prune_dead_process_files()


def child_exit(server: Any, worker: Any) -> None:
    """After a web worker exited."""
    from lomas.metrics import mark_process_dead

    mark_process_dead(worker.pid)
