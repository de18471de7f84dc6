"""Users of the server.

A Django user is a lomas user only if it has a LomasProfile: accounts without one
(an operator's superuser, say) can sign in to admin but are unknown to the API.
Lomas admins are staff users.
"""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in; `username` is the lomas user name (case-sensitive)."""


class LomasProfile(models.Model):
    """What makes a user a lomas user: the per-user query slot."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="lomas_profile")
    # False while one of the user's real queries runs (one at a time, across datasets).
    may_query = models.BooleanField(default=True)

    class Meta:
        verbose_name = "lomas profile"

    def __str__(self) -> str:
        return f"lomas profile of {self.user.username}"
