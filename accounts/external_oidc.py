"""Trusting an external OpenID Connect identity provider (Keycloak, Dex, ...).

The provider is named by its issuer (`LOMAS_EXTERNAL_OIDC_ISSUER`); its discovery
document is read once. A bearer is then either a JWT signed by one of the
provider's keys (mode `jwt`: signature, `exp`, `nbf`, `iss` and `aud` checked
here) or an access token the provider's userinfo endpoint accepts (mode
`userinfo`). The signing keys are cached and fetched again when a token names a
key not seen yet (key rotation), at most once every `jwks_refresh_seconds`.
"""

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings

logger = logging.getLogger(__name__)

MODES = ("jwt", "userinfo")


class TokenRejected(Exception):
    """The bearer is not a valid token of the provider (the reason is logged, never sent)."""


@dataclass(frozen=True)
class ProviderSettings:
    """Where the provider is and what a token of it must carry."""

    issuer: str
    discovery_url: str
    audience: str
    mode: str
    algorithms: tuple[str, ...]
    jwks_refresh_seconds: float
    timeout_seconds: float
    leeway_seconds: int


def _get_json(url: str, *, timeout: float, bearer: str | None = None) -> dict[str, Any]:
    """GET a JSON object over http(s); anything else is a TokenRejected."""
    if not url.startswith(("https://", "http://")):
        raise TokenRejected(f"not an http(s) URL: {url!r}")
    headers = {"Accept": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as answer:  # noqa: S310 (scheme checked)
            data = json.loads(answer.read())
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise TokenRejected(f"{url}: {exc}") from None
    if not isinstance(data, dict):
        raise TokenRejected(f"{url}: not a JSON object")
    return data


@dataclass
class ExternalOIDCProvider:
    """One external provider: its discovery document and its cached signing keys."""

    config: ProviderSettings
    _discovery: dict[str, Any] | None = None
    _keys: dict[str | None, jwt.PyJWK] = field(default_factory=dict)
    _keys_fetched_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims, as the configured mode verifies them."""
        if self.config.mode == "userinfo":
            return self._userinfo_claims(token)
        return self._jwt_claims(token)

    def discovery(self) -> dict[str, Any]:
        """The provider's discovery document, fetched on first use; its issuer must be ours."""
        if self._discovery is None:
            document = _get_json(self.config.discovery_url, timeout=self.config.timeout_seconds)
            if document.get("issuer") != self.config.issuer:
                raise TokenRejected(f"discovery names issuer {document.get('issuer')!r}, not {self.config.issuer!r}")
            self._discovery = document
        return self._discovery

    def _userinfo_claims(self, token: str) -> dict[str, Any]:
        endpoint = self.discovery().get("userinfo_endpoint")
        if not endpoint:
            raise TokenRejected("the provider has no userinfo endpoint")
        return _get_json(endpoint, timeout=self.config.timeout_seconds, bearer=token)

    def _jwt_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"unreadable JWT header: {exc}") from None
        if header.get("alg") not in self.config.algorithms:
            raise TokenRejected(f"algorithm {header.get('alg')!r} is not accepted")
        key = self._signing_key(header.get("kid"))
        try:
            return jwt.decode(
                token,
                key=key.key,
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"JWT refused: {exc}") from None

    def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The key named `kid`; an unknown kid fetches the key set again (rotation), rate-limited."""
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._may_refresh_keys():
                # Failed attempts count too: an unreachable provider is not asked on every request.
                self._keys_fetched_at = time.monotonic()
                self._keys = self._fetch_keys()
                key = self._keys.get(kid)
        if key is None:
            raise TokenRejected(f"no signing key {kid!r}")
        return key

    def _may_refresh_keys(self) -> bool:
        if self._keys_fetched_at is None:
            return True
        return time.monotonic() - self._keys_fetched_at >= self.config.jwks_refresh_seconds

    def _fetch_keys(self) -> dict[str | None, jwt.PyJWK]:
        jwks_uri = self.discovery().get("jwks_uri")
        if not jwks_uri:
            raise TokenRejected("the provider has no jwks_uri")
        document = _get_json(jwks_uri, timeout=self.config.timeout_seconds)
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry.get("kid")] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                logger.warning("external OIDC: skipping an unusable key %r of %s", entry.get("kid"), jwks_uri)
        # A provider with a single key may leave `kid` out of its tokens.
        if len(keys) == 1:
            keys.setdefault(None, next(iter(keys.values())))
        return keys


@lru_cache(maxsize=4)
def _provider_for(config: ProviderSettings) -> ExternalOIDCProvider:
    return ExternalOIDCProvider(config)


def external_provider() -> ExternalOIDCProvider | None:
    """The configured provider (one per process, its caches shared by requests), or None."""
    issuer = settings.LOMAS_EXTERNAL_OIDC_ISSUER
    if not issuer:
        return None
    config = ProviderSettings(
        issuer=issuer,
        discovery_url=settings.LOMAS_EXTERNAL_OIDC_DISCOVERY_URL
        or f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        audience=settings.LOMAS_EXTERNAL_OIDC_AUDIENCE,
        mode=settings.LOMAS_EXTERNAL_OIDC_MODE,
        algorithms=tuple(settings.LOMAS_EXTERNAL_OIDC_ALGORITHMS),
        jwks_refresh_seconds=settings.LOMAS_EXTERNAL_OIDC_JWKS_REFRESH_SECONDS,
        timeout_seconds=settings.LOMAS_EXTERNAL_OIDC_TIMEOUT_SECONDS,
        leeway_seconds=settings.LOMAS_EXTERNAL_OIDC_LEEWAY_SECONDS,
    )
    return _provider_for(config)
