from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    """Privacy budgets per user and dataset, and their append-only ledger."""

    name = "budgets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from budgets import receivers  # noqa: F401  (connects the audit receivers)
