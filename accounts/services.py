"""Writes on users and their lomas profile."""

from django.db import transaction

from accounts.models import LomasProfile, User
from lomas.errors import QUERY_IN_PROGRESS, InvalidQuery, UnauthorizedAccess


@transaction.atomic
def user_create(*, username: str, email: str = "", password: str | None = None, is_lomas_admin: bool = False) -> User:
    """Create a lomas user (with profile); lomas admins are staff superusers of Django admin."""
    if User.objects.filter(username=username).exists():
        raise InvalidQuery(f"User {username} already exists.")
    user = User(username=username, email=email, is_staff=is_lomas_admin, is_superuser=is_lomas_admin)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    LomasProfile.objects.create(user=user)
    return user


def user_claim_query_slot(*, user: User) -> None:
    """Take the user's single query slot, or refuse: one real query at a time per user.

    A compare-and-set on `may_query`: of two concurrent claims exactly one changes the row.
    """
    claimed = LomasProfile.objects.filter(user=user, may_query=True).update(may_query=False)
    if claimed != 1:
        raise UnauthorizedAccess(QUERY_IN_PROGRESS.format(user=user.username))


def user_release_query_slot(*, user: User) -> None:
    """Give the query slot back (after success or failure alike)."""
    LomasProfile.objects.filter(user=user).update(may_query=True)


def user_set_may_query(*, user: User, may_query: bool) -> None:
    """Set the query slot by hand (admins unblock a user whose worker crashed)."""
    LomasProfile.objects.filter(user=user).update(may_query=may_query)
