"""Jobs and the query archive in Django admin: read-only, filterable, requests and answers shown as indented JSON."""

from django.contrib import admin

from lomas.admin_display import ReadOnlyAdmin, pretty_json
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
