"""The OAuth 2.0 device authorization grant (RFC 8628), lomas-client's default sign-in.

django-oauth-toolkit provides the endpoints and the verification pages; these
subclasses complete it: the device code lives `LOMAS_DEVICE_CODE_EXPIRE_SECONDS`,
polling answers `authorization_pending`, `slow_down`, `expired_token` and
`access_denied` as RFC 8628 §3.5 says, a device code is exchanged for tokens
once, and the verification URIs are absolute.
"""

import json
import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import http
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_device_grant_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import DeviceAuthorizationView, DeviceUserCodeView, TokenView
from oauth2_provider.views.device import DeviceGrantForm
from oauthlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    TemporarilyUnavailableError,
)
from oauthlib.oauth2.rfc8628 import errors as rfc8628_errors

from lomas.rate_limit import sign_in_attempt

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 §3.5: after slow_down the client adds 5 s to its interval, and so do we.
SLOW_DOWN_STEP_SECONDS = 5


def _oauth_error(error: OAuth2Error) -> http.HttpResponse:
    response = http.HttpResponse(error.json, status=error.status_code, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _sign_in_refused(message: str) -> http.HttpResponse:
    return _oauth_error(TemporarilyUnavailableError(description=message))


class LomasDeviceAuthorizationView(DeviceAuthorizationView):
    """Starts a device sign-in: device code, user code and where the user goes to approve it."""

    def post(self, request: http.HttpRequest, *args: Any, **kwargs: Any) -> http.HttpResponse:
        response = super().post(request, *args, **kwargs)
        if response.status_code != 200:
            return response
        data = json.loads(response.content)
        lifetime = settings.LOMAS_DEVICE_CODE_EXPIRE_SECONDS
        interval = oauth2_settings.DEVICE_FLOW_INTERVAL
        now = timezone.now()
        # The first poll may come at once (lomas-client polls before its first sleep).
        get_device_grant_model().objects.filter(device_code=data["device_code"]).update(
            expires=now + timedelta(seconds=lifetime),
            interval=interval,
            last_checked=now - timedelta(seconds=interval),
        )
        verification_uri = request.build_absolute_uri(data["verification_uri"])
        data.update(
            verification_uri=verification_uri,
            verification_uri_complete=f"{verification_uri}?{urlencode({'user_code': data['user_code']})}",
            expires_in=lifetime,
            interval=interval,
        )
        answer = http.JsonResponse(data)
        answer["Cache-Control"] = "no-store"
        return answer


class LomasTokenView(TokenView):
    """The token endpoint, with the device-code polling answers of RFC 8628 §3.5."""

    def post(self, request: http.HttpRequest, *args: Any, **kwargs: Any) -> http.HttpResponse:
        grant_type = request.POST.get("grant_type")
        if grant_type == DEVICE_CODE_GRANT and not request.POST.get("device_code"):
            return _oauth_error(InvalidRequestError(description="Missing device_code parameter."))
        if grant_type == "password":  # password guessing is throttled (lomas/rate_limit.py)
            return sign_in_attempt(
                request,
                lambda: super(LomasTokenView, self).post(request, *args, **kwargs),
                succeeded=lambda response: response.status_code == 200,
                refused=_sign_in_refused,
            )
        return super().post(request, *args, **kwargs)

    def device_flow_token_response(
        self, request: http.HttpRequest, device_code: str, *args: Any, **kwargs: Any
    ) -> http.HttpResponse:
        model = get_device_grant_model()
        grant = model.objects.filter(device_code=device_code).first()
        if grant is None or grant.client_id != request.POST.get("client_id"):
            return _oauth_error(InvalidGrantError(description="Unknown or already used device code."))
        if grant.is_expired():
            return _oauth_error(rfc8628_errors.ExpiredTokenError())
        if grant.status == model.DENIED:
            return _oauth_error(rfc8628_errors.AccessDenied())
        if grant.status == model.AUTHORIZATION_PENDING:
            return self._pending(grant)
        return self._exchange(request, grant.pk)

    def _pending(self, grant: Any) -> http.HttpResponse:
        """authorization_pending, or slow_down to a client polling faster than the interval."""
        now = timezone.now()
        too_fast = now - grant.last_checked < timedelta(seconds=grant.interval)
        interval = grant.interval + SLOW_DOWN_STEP_SECONDS if too_fast else grant.interval
        type(grant).objects.filter(pk=grant.pk).update(last_checked=now, interval=interval)
        if too_fast:
            return _oauth_error(rfc8628_errors.SlowDownError())
        return _oauth_error(rfc8628_errors.AuthorizationPendingError())

    @transaction.atomic
    def _exchange(self, request: http.HttpRequest, grant_pk: int) -> http.HttpResponse:
        """Tokens for an approved device code, which is then spent (RFC 8628 §3.5: used once)."""
        model = get_device_grant_model()
        grant = model.objects.select_for_update().filter(pk=grant_pk, status=model.AUTHORIZED).first()
        if grant is None:
            return _oauth_error(InvalidGrantError(description="Unknown or already used device code."))
        _url, headers, body, status = self.create_token_response(request)
        if status == 200:
            # Spent: the code can never be exchanged again; the approval page still shows it.
            grant.device_code = f"spent-{secrets.token_urlsafe(32)}"
            grant.save(update_fields=["device_code"])
        response = http.HttpResponse(body, status=status, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return response


class LomasDeviceGrantForm(DeviceGrantForm):
    """The user code as people type it: any case, with spaces or dashes."""

    def clean_user_code(self) -> str:
        self.cleaned_data["user_code"] = re.sub(r"[\s-]", "", self.cleaned_data["user_code"]).upper()
        return super().clean_user_code()


class LomasDeviceUserCodeView(DeviceUserCodeView):
    """The verification page: the signed-in user enters (or confirms) the code their client shows."""

    form_class = LomasDeviceGrantForm
