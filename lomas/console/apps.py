from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """Cross-app orchestration on top of every app: it may import any of them, none of them imports it."""

    name = "lomas.console"
