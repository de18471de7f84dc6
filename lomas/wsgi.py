"""WSGI entry point (gunicorn lomas.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lomas.settings")

application = get_wsgi_application()
