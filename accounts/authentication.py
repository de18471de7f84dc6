"""How API requests are authenticated: a chain of DRF authentication classes.

Each class handles the bearers it recognises and returns None otherwise, so the
built-in provider, an external OIDC provider and FreePass can be enabled together
(lomas/settings.py lists them in that order, after the bootstrap secret and before the browsable
API's session).
A bearer that no enabled class accepts leaves the request anonymous, and the
permission check answers 403 UnauthorizedAccessException "Failed bearer token
verification."; a bearer of a user unknown here answers 403 "User X does not exist", and
one of a deactivated user 403 "User X is deactivated." (whoever issued it, whenever).
"""

import hmac
import logging
import re
from typing import Any

from django.conf import settings
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.request import Request

from accounts.bootstrap import BootstrapGone, BootstrapToken, bootstrap_identity
from accounts.external_oidc import TokenRejected, external_provider
from accounts.freepass import FreePassRejected, free_pass_enabled, free_pass_user_name
from accounts.models import User
from accounts.selectors import bootstrap_is_active, user_get_by_name
from accounts.services import bootstrap_record_use
from lomas.errors import BAD_TOKEN, UnauthorizedAccess

logger = logging.getLogger(__name__)

_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class UnknownUser(UnauthorizedAccess, APIException):
    """403 "User X does not exist" for a verified identity; DRF then leaves the request anonymous."""

    status_code = 403


class InactiveUser(UnauthorizedAccess, APIException):
    """403 for any bearer of a deactivated user, even one issued before (or by an external provider)."""

    status_code = 403


INACTIVE_USER = "User {user} is deactivated."


def _active(user: User) -> User:
    if not user.is_active:
        raise InactiveUser(INACTIVE_USER.format(user=user.get_username()))
    return user


def _lomas_user(name: str) -> User:
    try:
        user = user_get_by_name(username=name)
    except UnauthorizedAccess as exc:
        raise UnknownUser(exc.message) from None
    return _active(user)


def bearer_token(request: Request) -> str | None:
    """The text after `Bearer ` in the Authorization header, or None."""
    header = get_authorization_header(request).decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class BootstrapAuthentication(BaseAuthentication):
    """The bootstrap secret (LOMAS_BOOTSTRAP_SECRET, spec §7): a lomas admin until disabled, then 410; audited."""

    def authenticate(self, request: Request) -> tuple[User, BootstrapToken] | None:
        secret, token = settings.LOMAS_BOOTSTRAP_SECRET, bearer_token(request)
        if not secret or token is None or not hmac.compare_digest(token.encode(), secret.encode()):
            return None
        if not bootstrap_is_active():
            raise BootstrapGone()
        bootstrap_record_use(method=request.method, path=request.path)
        return bootstrap_identity(), BootstrapToken()

    def authenticate_header(self, request: Request) -> str | None:  # type: ignore[override]
        return None


class LomasBearerAuthentication(OAuth2Authentication):
    """Bearer tokens issued by this server's OAuth2/OIDC provider (LOMAS_BUILTIN_OIDC_ENABLED).

    A missing or bad token leaves the request anonymous; the permission check then
    answers 403 UnauthorizedAccessException, which lomas clients can parse (a 401
    with WWW-Authenticate is what DRF would do by default).
    """

    def authenticate(self, request: Request) -> tuple[User, Any] | None:
        if not settings.LOMAS_BUILTIN_OIDC_ENABLED or bearer_token(request) is None:
            return None  # only the Authorization header carries a token (the toolkit would parse the body too)
        identity = super().authenticate(request)
        if identity is not None:
            _active(identity[0])
        return identity

    def authenticate_header(self, request: Request) -> str | None:  # type: ignore[override]
        return None


class ExternalOIDCAuthentication(BaseAuthentication):
    """Bearers of the external identity provider LOMAS_EXTERNAL_OIDC_ISSUER, if one is set.

    In `jwt` mode only JWT-shaped bearers are this class's; in `userinfo` mode every
    bearer the classes before it did not accept is asked of the provider.
    """

    def authenticate(self, request: Request) -> tuple[User, dict[str, Any]] | None:
        provider = external_provider()
        token = bearer_token(request)
        if provider is None or token is None:
            return None
        if provider.config.mode == "jwt" and not _JWT_SHAPE.match(token):
            return None
        try:
            claims = provider.claims(token)
        except TokenRejected as exc:
            logger.info("external OIDC bearer refused: %s", exc)
            raise AuthenticationFailed(BAD_TOKEN) from None
        name = claims.get(settings.LOMAS_EXTERNAL_OIDC_USERNAME_CLAIM)
        if not isinstance(name, str) or not name:
            logger.info("external OIDC bearer refused: no %r claim", settings.LOMAS_EXTERNAL_OIDC_USERNAME_CLAIM)
            raise AuthenticationFailed(BAD_TOKEN)
        return _lomas_user(name), claims

    def authenticate_header(self, request: Request) -> str | None:  # type: ignore[override]
        return None


class FreePassAuthentication(BaseAuthentication):
    """Development only (LOMAS_FREE_PASS_ENABLED with DEBUG): the bearer names the user, unverified."""

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        token = bearer_token(request)
        if token is None or not free_pass_enabled():
            return None
        try:
            name = free_pass_user_name(token)
        except FreePassRejected as exc:
            logger.info("free-pass bearer refused: %s", exc)
            raise AuthenticationFailed(BAD_TOKEN) from None
        return _lomas_user(name), None

    def authenticate_header(self, request: Request) -> str | None:  # type: ignore[override]
        return None
