"""Jobs and the query archive in Django admin (read-only)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from queries.models import Job, QueryArchive


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("uid", "user", "dataset", "library", "kind", "status", "status_code", "created_at", "finished_at")
    list_filter = ("status", "kind", "library", "dataset")
    search_fields = ("uid", "user__username", "dataset__name")
    date_hierarchy = "created_at"


@admin.register(QueryArchive)
class QueryArchiveAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user_name", "dataset_name", "dp_library", "job_uid")
    list_filter = ("dp_library", "dataset_name", "user_name")
    search_fields = ("user_name", "dataset_name", "job_uid")
    date_hierarchy = "created_at"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
