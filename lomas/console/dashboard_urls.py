"""Admin dashboard pages under /admin/ (staff only, through the admin site's login)."""

from django.contrib import admin
from django.urls import path

from lomas.console import dashboard

urlpatterns = [
    path("overview/", admin.site.admin_view(dashboard.overview), name="lomas_admin_overview"),
    path(
        "collections/import/",
        admin.site.admin_view(dashboard.collections_import),
        name="lomas_admin_collections_import",
    ),
    path(
        "collections/export/datasets.zip",
        admin.site.admin_view(dashboard.collections_export_datasets_archive),
        name="lomas_admin_collections_export_archive",
    ),
    path(
        "collections/export/<str:name>/",
        admin.site.admin_view(dashboard.collections_export),
        name="lomas_admin_collections_export",
    ),
]
