"""The OAuth2/OIDC provider routes (under /o/) and the sign-in pages."""

from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from oauth2_provider import urls as oauth2_urls

from accounts.device import LomasDeviceAuthorizationView, LomasDeviceUserCodeView, LomasTokenView
from accounts.oauth import LomasDiscoveryView
from accounts.sign_in import LomasLoginView

# Our views first (they shadow the toolkit's at the same paths), then the toolkit's routes, in its namespace.
oauth2_patterns = (
    [
        re_path(
            r"^\.well-known/openid-configuration/?$",
            LomasDiscoveryView.as_view(),
            name="oidc-connect-discovery-info",
        ),
        path("token/", LomasTokenView.as_view(), name="token"),
        path("device-authorization/", LomasDeviceAuthorizationView.as_view(), name="device-authorization"),
        path("device/", LomasDeviceUserCodeView.as_view(), name="device"),
        *oauth2_urls.base_urlpatterns,
        *oauth2_urls.oidc_urlpatterns,
    ],
    oauth2_urls.app_name,
)

urlpatterns = [
    path("o/", include(oauth2_patterns)),
    path("accounts/login/", LomasLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
