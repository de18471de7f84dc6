"""Bearers of an external OpenID Connect provider: a real HTTP provider on localhost
(discovery, JWKS, userinfo) with test RSA keys, and RS256 tokens signed by them."""

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

BAD_TOKEN = {"type": "UnauthorizedAccessException", "message": "Failed bearer token verification."}


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


@dataclass
class IdentityProvider:
    """A minimal OIDC provider served over HTTP on localhost."""

    issuer: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    userinfo: dict[str, dict[str, Any]] = field(default_factory=dict)  # access token -> claims
    hits: Counter = field(default_factory=Counter)

    def token(self, key: SigningKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": "lomas_client",
            "sub": "user-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "name": "Alice",
            "email": "alice@example.com",
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        key = key or self.keys[0]
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})


def _handler(provider: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.hits[self.path] += 1
            if self.path == "/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": provider.issuer,
                        "jwks_uri": f"{provider.issuer}/jwks",
                        "userinfo_endpoint": f"{provider.issuer}/userinfo",
                    },
                )
            elif self.path == "/jwks":
                self._json(200, {"keys": [key.jwk() for key in provider.keys]})
            elif self.path == "/userinfo":
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                claims = provider.userinfo.get(bearer)
                self._json(200, claims) if claims else self._json(401, {"error": "invalid_token"})
            else:
                self._json(404, {})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    idp = IdentityProvider(keys=[SigningKey("key-1")])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
    idp.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield idp
    server.shutdown()
    server.server_close()


@pytest.fixture
def external(provider: IdentityProvider, settings: Any) -> IdentityProvider:
    """The server trusts the provider (JWT mode); keys may be fetched again at once."""
    settings.LOMAS_EXTERNAL_OIDC_ISSUER = provider.issuer
    settings.LOMAS_EXTERNAL_OIDC_JWKS_REFRESH_SECONDS = 0
    return provider


def initial_budget(token: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.post("/api/get_initial_budget", {"dataset_name": "PENGUIN"}, format="json")


def test_rs256_token_of_the_provider_is_accepted_as_the_named_user(alice, external):
    answer = initial_budget(external.token())
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"initial_epsilon": 10.0, "initial_delta": 0.005}
    assert external.hits["/.well-known/openid-configuration"] == 1


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": "another_client"}, id="wrong audience"),
        pytest.param({"aud": None}, id="no audience"),
        pytest.param({"exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"exp": None}, id="no expiry"),
        pytest.param({"nbf": int(time.time()) + 600}, id="not yet valid"),
        pytest.param({"iss": "http://elsewhere.example"}, id="wrong issuer"),
        pytest.param({"name": None}, id="no name"),
    ],
)
def test_token_with_bad_claims_is_refused(alice, external, claims):
    answer = initial_budget(external.token(**claims))
    assert answer.status_code == 403
    assert answer.json() == BAD_TOKEN


def test_token_signed_by_an_unknown_key_is_refused(alice, external):
    # given: a key the provider never published, and one forging a published kid
    stranger = SigningKey("key-unknown")
    forger = SigningKey("key-1")
    # when
    unknown_kid = initial_budget(external.token(key=stranger))
    forged = initial_budget(external.token(key=forger))
    # then
    assert (unknown_kid.status_code, unknown_kid.json()) == (403, BAD_TOKEN)
    assert (forged.status_code, forged.json()) == (403, BAD_TOKEN)


def test_unsigned_token_is_refused(alice, external):
    unsigned = jwt.encode({"iss": external.issuer, "aud": "lomas_client", "name": "Alice"}, None, algorithm="none")
    answer = initial_budget(unsigned)
    assert (answer.status_code, answer.json()) == (403, BAD_TOKEN)


def test_verified_token_of_a_user_unknown_here_is_refused(alice, external):
    answer = initial_budget(external.token(name="Mallory"))
    assert answer.status_code == 403
    assert answer.json() == {
        "type": "UnauthorizedAccessException",
        "message": "User Mallory does not exist. Please, verify the client object initialisation.",
    }


def test_rotated_key_is_fetched_when_a_token_names_it_and_the_retired_key_is_refused(alice, external):
    # given: the provider signs with key-1, which the server has cached
    old = external.keys[0]
    assert initial_budget(external.token()).status_code == 200
    # when: the provider rotates to key-2
    new = SigningKey("key-2")
    external.keys = [new]
    with_new = initial_budget(external.token(key=new))
    with_old = initial_budget(external.token(key=old))
    # then
    assert with_new.status_code == 200, with_new.content
    assert (with_old.status_code, with_old.json()) == (403, BAD_TOKEN)
    assert external.hits["/jwks"] == 3  # first use, key-2 unknown, key-1 unknown after rotation


def test_known_keys_are_cached_and_unknown_kids_do_not_flood_the_provider(alice, external, settings):
    settings.LOMAS_EXTERNAL_OIDC_JWKS_REFRESH_SECONDS = 3600
    for _ in range(3):
        assert initial_budget(external.token()).status_code == 200
    for number in range(3):
        assert initial_budget(external.token(key=SigningKey(f"random-{number}"))).status_code == 403
    assert external.hits["/jwks"] == 1


def test_discovery_of_another_issuer_is_refused(alice, provider, settings):
    settings.LOMAS_EXTERNAL_OIDC_ISSUER = f"{provider.issuer}/realms/other"
    settings.LOMAS_EXTERNAL_OIDC_DISCOVERY_URL = f"{provider.issuer}/.well-known/openid-configuration"
    answer = initial_budget(provider.token(iss=f"{provider.issuer}/realms/other"))
    assert (answer.status_code, answer.json()) == (403, BAD_TOKEN)


def test_unreachable_provider_refuses_the_token(alice, settings):
    settings.LOMAS_EXTERNAL_OIDC_ISSUER = "http://127.0.0.1:9"
    answer = initial_budget(IdentityProvider(issuer="http://127.0.0.1:9", keys=[SigningKey("k")]).token())
    assert (answer.status_code, answer.json()) == (403, BAD_TOKEN)


def test_userinfo_mode_asks_the_provider_who_the_bearer_is(alice, provider, settings):
    # given
    settings.LOMAS_EXTERNAL_OIDC_ISSUER = provider.issuer
    settings.LOMAS_EXTERNAL_OIDC_MODE = "userinfo"
    provider.userinfo["opaque-alice"] = {"sub": "1", "name": "Alice", "email": "alice@example.com"}
    provider.userinfo["opaque-mallory"] = {"sub": "2", "name": "Mallory"}
    # when
    accepted = initial_budget("opaque-alice")
    refused = initial_budget("opaque-not-issued")
    unknown = initial_budget("opaque-mallory")
    # then
    assert accepted.status_code == 200, accepted.content
    assert (refused.status_code, refused.json()) == (403, BAD_TOKEN)
    assert unknown.json()["message"].startswith("User Mallory does not exist.")
    assert provider.hits["/userinfo"] == 3


def test_built_in_and_external_providers_work_together_and_built_in_can_be_disabled(alice, external, client, settings):
    # given
    built_in = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "Alice", "password": "alice-password", "client_id": "lomas_client"},
    ).json()["access_token"]
    # when / then
    assert initial_budget(built_in).status_code == 200
    assert initial_budget(external.token()).status_code == 200
    settings.LOMAS_BUILTIN_OIDC_ENABLED = False
    assert (initial_budget(built_in).status_code, initial_budget(built_in).json()) == (403, BAD_TOKEN)
    assert initial_budget(external.token()).status_code == 200


def test_verified_token_of_a_deactivated_user_is_refused(alice, external):
    alice.is_active = False
    alice.save()
    answer = initial_budget(external.token())
    assert answer.status_code == 403
    assert answer.json() == {"type": "UnauthorizedAccessException", "message": "User Alice is deactivated."}
