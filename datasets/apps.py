from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    """Private datasets, their csvw-eo metadata, connectors and dummy data."""

    name = "datasets"
    default_auto_field = "django.db.models.BigAutoField"
