"""gunicorn settings of the web image, tunable from the environment.

A status request waits up to LOMAS_STATUS_WAIT_SECONDS for its job, sleeping in one thread:
GUNICORN_THREADS per process bounds how many researchers can wait at once (plus the other
requests in flight). WEB_CONCURRENCY (processes) and FORWARDED_ALLOW_IPS are read by gunicorn itself.
The metrics hooks of lomas/gunicorn_conf.py apply (with PROMETHEUS_MULTIPROC_DIR set).
"""

import os

from lomas.gunicorn_conf import child_exit, on_starting

__all__ = ["child_exit", "on_starting"]

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
accesslog = "-"
