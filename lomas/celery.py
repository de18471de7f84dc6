"""The Celery application: query jobs run in worker processes."""

import os

from celery import Celery

from lomas import logs, metrics, tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lomas.settings")

app = Celery("lomas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Traces, metrics and log context of web and worker processes (see README, "Observability").
tracing.configure()
tracing.instrument_celery()
metrics.instrument_celery()
logs.instrument_celery()
