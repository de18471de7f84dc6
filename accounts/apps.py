from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, their lomas profile, and the OAuth2/OIDC identity of the API."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import receivers  # noqa: F401 (connects the receivers)
        from accounts.freepass import free_pass_warn

        free_pass_warn()
