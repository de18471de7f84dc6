from django.apps import AppConfig


class QueriesConfig(AppConfig):
    """DP query jobs, the library adapters that run them, and the query archive."""

    name = "queries"
    default_auto_field = "django.db.models.BigAutoField"
