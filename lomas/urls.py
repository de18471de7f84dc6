"""URL configuration.

The lomas API lives under /api/ (the client's app_url is http://host:port/api);
OAuth2/OIDC under /o/; Django admin under /admin/.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.admin_api import BootstrapApi
from accounts.sign_in import admin_login
from lomas.console.views import ConfigApi, StateApi
from lomas.metrics_view import metrics
from lomas.views import HealthApi, LiveApi, root

api_patterns = [
    path("", root, name="root"),
    path("live", LiveApi.as_view(), name="live"),
    path("health", HealthApi.as_view(), name="health"),
    path("state", StateApi.as_view(), name="state"),
    path("config", ConfigApi.as_view(), name="config"),
    path("bootstrap", BootstrapApi.as_view(), name="bootstrap"),  # spec §7 (accounts/bootstrap.py)
    path("", include("budgets.urls")),
    path("", include("queries.urls")),
    path("", include("lomas.console.admin_urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),  # OpenAPI (lomas/openapi.py)
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),  # Swagger UI
]

urlpatterns = [
    path("api/", include(api_patterns)),
    path("metrics", metrics, name="metrics"),
    path("admin/login/", admin_login, name="admin_login"),  # throttled (accounts/sign_in.py)
    path("portal/", include("lomas.console.portal_urls")),
    path("admin/", include("lomas.console.dashboard_urls")),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
]

handler404 = "lomas.exception_handler.not_found"
handler500 = "lomas.exception_handler.server_error"
