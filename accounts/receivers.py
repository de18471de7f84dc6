"""Side effects of saving users, whichever path saved them."""

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.services import user_revoke_tokens


@receiver(post_save, sender=User)
def user_inactive_revoke_tokens(sender: type[User], instance: User, **kwargs: Any) -> None:
    """A deactivated user keeps no token, however they were deactivated (a shell, another service)."""
    if not instance.is_active:
        user_revoke_tokens(user=instance)
