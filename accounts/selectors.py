"""Reads on users."""

from django.conf import settings

from accounts.models import BootstrapState, LomasProfile, User
from lomas.errors import UNKNOWN_USER, UnauthorizedAccess


def user_is_lomas_user(*, user: User) -> bool:
    """Whether the account has a lomas profile."""
    return LomasProfile.objects.filter(user_id=user.pk).exists()


def user_require_lomas_user(*, user: User) -> User:
    """The user, or 403 'User X does not exist' for an account without a lomas profile."""
    if not user_is_lomas_user(user=user):
        raise UnauthorizedAccess(UNKNOWN_USER.format(user=user.get_username()))
    return user


def user_get_by_name(*, username: str) -> User:
    """A lomas user by name, or 403 as the reference server answers for unknown users."""
    user = User.objects.filter(username=username, lomas_profile__isnull=False).first()
    if user is None:
        raise UnauthorizedAccess(UNKNOWN_USER.format(user=username))
    return user


def user_may_query(*, user: User) -> bool:
    """Whether the user's query slot is free now (open, or its lease is over)."""
    profile = LomasProfile.objects.filter(user=user).first()
    return profile is not None and profile.may_query_now


def user_list_names() -> list[str]:
    """Names of every lomas user."""
    return list(
        User.objects.filter(lomas_profile__isnull=False).order_by("username").values_list("username", flat=True)
    )


def user_list() -> list[User]:
    """Every lomas user, with their profile."""
    return list(User.objects.filter(lomas_profile__isnull=False).select_related("lomas_profile").order_by("username"))


def bootstrap_is_active() -> bool:
    """Whether the bootstrap secret is configured and not disabled."""
    return bool(settings.LOMAS_BOOTSTRAP_SECRET) and not BootstrapState.objects.exists()
