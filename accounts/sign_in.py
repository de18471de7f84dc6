"""The sign-in pages (/accounts/login/ and Django admin's /admin/login/), throttled against password guessing."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from lomas.rate_limit import sign_in_attempt


def _refused(message: str) -> HttpResponse:
    return HttpResponse(message, content_type="text/plain; charset=utf-8")


def _signed_in(response: HttpResponse) -> bool:
    return response.status_code == 302  # a failed sign-in shows the form again (200)


class LomasLoginView(LoginView):
    """The browsable API's sign-in page."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return sign_in_attempt(
            request,
            lambda: super(LomasLoginView, self).post(request, *args, **kwargs),
            succeeded=_signed_in,
            refused=_refused,
        )


def admin_login(request: HttpRequest) -> HttpResponse:
    """Django admin's sign-in page."""
    if request.method != "POST":
        return admin.site.login(request)
    return sign_in_attempt(request, lambda: admin.site.login(request), succeeded=_signed_in, refused=_refused)
