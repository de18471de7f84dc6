"""OAuth2 / OpenID Connect provider customisations for lomas-client.

lomas-client 0.5.1 is the public client `lomas_client`: it signs in with the
password grant or the device-code grant, refreshes its token, and needs a
discovery document listing the device-authorization and introspection endpoints.
"""

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from oauth2_provider.models import AbstractApplication
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.views import ConnectDiscoveryInfoView
from oauthlib.common import Request as OAuthRequest

# Every grant lomas-client uses, all with the one client id.
LOMAS_CLIENT_GRANTS = frozenset(
    {
        AbstractApplication.GRANT_PASSWORD,
        AbstractApplication.GRANT_DEVICE_CODE,
        "refresh_token",
    }
)


# The grants a public client may use with its empty secret in a Basic header.
PUBLIC_CLIENT_GRANTS = frozenset(
    {AbstractApplication.GRANT_DEVICE_CODE, AbstractApplication.GRANT_PASSWORD, "refresh_token"}
)


class LomasOAuth2Validator(OAuth2Validator):
    """Allows lomas_client every grant it uses; puts the lomas identity in the claims."""

    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "name": "profile", "email": "email"}

    def authenticate_client(self, request: OAuthRequest, *args: Any, **kwargs: Any) -> bool:
        """Client authentication needs a secret: a public client (lomas_client has none) never passes it.

        The toolkit would accept a public client's empty secret, so that `client_id=lomas_client` alone
        opened the token introspection endpoint; public clients still pass on the grants that need no
        client authentication (device code, password and refresh token: Swagger UI sends the client id
        in a Basic header with an empty secret) and nowhere else.
        """
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        return request.client.client_type == AbstractApplication.CLIENT_CONFIDENTIAL or (
            request.grant_type in PUBLIC_CLIENT_GRANTS
        )

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        if client.client_id == settings.LOMAS_OAUTH_CLIENT_ID and grant_type in LOMAS_CLIENT_GRANTS:
            return True
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        """A refresh token gives nothing to a deactivated user (their tokens are revoked too: user_revoke_tokens)."""
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        return valid and request.user.is_active

    def get_additional_claims(self) -> dict[str, Any]:  # type: ignore[override]
        # The callable form lets the discovery document list the claims.
        return {
            "name": lambda request: request.user.username,
            "preferred_username": lambda request: request.user.username,
            "email": lambda request: request.user.email,
        }


class LomasDiscoveryView(ConnectDiscoveryInfoView):
    """The toolkit's discovery document plus the endpoints lomas-client requires."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        data = json.loads(super().get(request, *args, **kwargs).content)
        data["device_authorization_endpoint"] = request.build_absolute_uri(
            reverse("oauth2_provider:device-authorization")
        )
        data["introspection_endpoint"] = request.build_absolute_uri(reverse("oauth2_provider:introspect"))
        data["grant_types_supported"] = [
            "password",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ]
        response = JsonResponse(data)
        response["Access-Control-Allow-Origin"] = "*"
        return response
