"""The bootstrap identity (spec §7): the bearer LOMAS_BOOTSTRAP_SECRET acts as a lomas admin until disabled.

It sets up the first admins of a fresh server. `DELETE /api/bootstrap` disables it for good (a row in
the database, so every process and every restart sees it); from then on the secret is answered 410 Gone.
"""

from rest_framework.exceptions import APIException

from accounts.models import User
from lomas.errors import UnauthorizedAccess

BOOTSTRAP_NAME = "bootstrap"
BOOTSTRAP_EMAIL = "boot@strap.com"
BOOTSTRAP_GONE = "The bootstrap identity is disabled."


class BootstrapGone(UnauthorizedAccess, APIException):
    """410: the bootstrap identity was disabled (or never configured)."""

    status = status_code = 410

    def __init__(self) -> None:
        super().__init__(BOOTSTRAP_GONE)


class BootstrapToken:
    """request.auth of a request made with the bootstrap secret."""


def bootstrap_identity() -> User:
    """The acting account of a bootstrap request: a lomas admin that is not stored (audited by name)."""
    return User(username=BOOTSTRAP_NAME, email=BOOTSTRAP_EMAIL, is_staff=True, is_superuser=True)
