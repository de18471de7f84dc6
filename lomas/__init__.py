"""lomas-django: a differential-privacy query server speaking the lomas protocol."""

from lomas.celery import app as celery_app

__all__ = ("celery_app",)
