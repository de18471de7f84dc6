"""The Celery application: query jobs run in worker processes."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lomas.settings")

app = Celery("lomas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
