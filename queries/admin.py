"""Jobs and the query archive in Django admin: read-only, filterable, requests and answers shown as indented JSON.

The ledger page of budgets gains a filter by the DP library of the query that made each charge.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from budgets.admin import LedgerEntryAdmin
from budgets.models import LedgerEntry
from lomas.admin_display import ReadOnlyAdmin, pretty_json
from queries.libraries import ADAPTERS
from queries.models import Job, QueryArchive


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("uid", "user", "dataset", "library", "kind", "status", "status_code", "created_at", "finished_at")
    list_filter = ("status", "kind", "library", "dataset", "user", "created_at")
    search_fields = ("uid", "user__username", "dataset__name")
    date_hierarchy = "created_at"
    list_select_related = ("user", "dataset")
    exclude = ("request", "result", "error")
    readonly_fields = ("request_formatted", "result_formatted", "error_formatted")

    @admin.display(description="request")
    def request_formatted(self, job: Job) -> str:
        return pretty_json(job.request)

    @admin.display(description="result")
    def result_formatted(self, job: Job) -> str:
        return pretty_json(job.result)

    @admin.display(description="error")
    def error_formatted(self, job: Job) -> str:
        return pretty_json(job.error)


@admin.register(QueryArchive)
class QueryArchiveAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user_name", "dataset_name", "dp_library", "job_uid")
    list_filter = ("dp_library", "dataset_name", "user_name", "created_at")
    search_fields = ("user_name", "dataset_name", "job_uid")
    date_hierarchy = "created_at"
    fields = ("created_at", "user_name", "dataset_name", "dp_library", "job_uid", "request", "answer")
    readonly_fields = fields

    @admin.display(description="request (client input)")
    def request(self, archive: QueryArchive) -> str:
        return pretty_json(archive.client_input)

    @admin.display(description="response")
    def answer(self, archive: QueryArchive) -> str:
        return pretty_json(archive.response)


class LibraryFilter(admin.SimpleListFilter):
    """Ledger charges by the DP library of the archived query that made them."""

    title = "library"
    parameter_name = "library"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(library, library) for library in ADAPTERS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        return queryset.filter(job_uid__in=QueryArchive.objects.filter(dp_library=self.value()).values("job_uid"))


class LedgerEntryByLibraryAdmin(LedgerEntryAdmin):
    """The ledger page of budgets, also filtered by DP library."""

    list_filter = (*LedgerEntryAdmin.list_filter[:-1], LibraryFilter, LedgerEntryAdmin.list_filter[-1])


admin.site.unregister(LedgerEntry)
admin.site.register(LedgerEntry, LedgerEntryByLibraryAdmin)
