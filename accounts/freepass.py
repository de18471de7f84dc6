"""FreePass: the bearer names the user, unverified. For development only.

The bearer is a user name (`Dr.Antartica`) or a JSON object `{"name": ..., "email": ...}`
as the reference server's free-pass mode reads it. Enabling it with DEBUG off is
refused at start-up (lomas/settings.py); with DEBUG on, start-up logs a loud warning.
"""

import json
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

WARNING = (
    "LOMAS_FREE_PASS_ENABLED is on: ANY bearer naming a user is accepted WITHOUT VERIFICATION. "
    "Anyone can act as any lomas user, admins included. Never use this outside development."
)


class FreePassRejected(Exception):
    """The bearer is neither a user name nor a {name, email} object."""


def free_pass_enabled() -> bool:
    """FreePass is on only when both its flag and DEBUG are."""
    return bool(settings.LOMAS_FREE_PASS_ENABLED and settings.DEBUG)


def free_pass_warn() -> None:
    """Log the start-up warning when FreePass is on."""
    if settings.LOMAS_FREE_PASS_ENABLED:
        logger.warning("!!! %s !!!", WARNING)


def free_pass_user_name(bearer: str) -> str:
    """The user name a FreePass bearer claims."""
    if not bearer.startswith("{"):
        return bearer
    try:
        identity = json.loads(bearer)
    except ValueError:
        raise FreePassRejected("the bearer is not valid JSON") from None
    name = identity.get("name") if isinstance(identity, dict) else None
    if not isinstance(name, str) or not name:
        raise FreePassRejected("the bearer has no name")
    return name
