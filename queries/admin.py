"""Jobs and the query archive in Django admin: read-only, filterable, linked to the user, dataset, budget
and ledger; requests and answers shown as indented JSON.

The ledger page of budgets gains a filter by the DP library of the query that made each charge.
"""

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from budgets.admin import LedgerEntryAdmin
from budgets.models import Budget, LedgerEntry
from lomas.admin_display import ReadOnlyAdmin, amount_html, pretty_json
from queries.libraries import ADAPTERS
from queries.models import Job, QueryArchive


def _link(url_name: str, pk: Any, text: Any) -> str:
    return format_html('<a href="{}">{}</a>', reverse(url_name, args=[pk]), text)


def _charges(job_uid: OuterRef) -> QuerySet:
    return LedgerEntry.objects.filter(job_uid=job_uid, kind=LedgerEntry.Kind.CHARGE)


class CollectedFilter(admin.SimpleListFilter):
    """Complete jobs whose result the researcher has read, or not yet."""

    title = "collected"
    parameter_name = "collected"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Collected"), ("no", "Not collected")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        return queryset.filter(collected_at__isnull=self.value() == "no")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "uid",
        "user_link",
        "dataset_link",
        "library",
        "kind",
        "status",
        "collected",
        "status_code",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", CollectedFilter, "kind", "library", "dataset", "user", "created_at")
    search_fields = ("uid", "user__username", "dataset__name")
    date_hierarchy = "created_at"
    list_select_related = ("user", "dataset")
    exclude = ("request", "result", "error")
    readonly_fields = ("related_links", "request_formatted", "result_formatted", "error_formatted")

    @admin.display(description="user", ordering="user__username")
    def user_link(self, job: Job) -> str:
        return _link("admin:accounts_user_change", job.user_id, job.user)

    @admin.display(description="dataset", ordering="dataset__name")
    def dataset_link(self, job: Job) -> str:
        return _link("admin:datasets_dataset_change", job.dataset_id, job.dataset)

    @admin.display(boolean=True, description="collected", ordering="collected_at")
    def collected(self, job: Job) -> bool | None:
        return job.collected_at is not None if job.status == Job.Status.COMPLETE else None

    @admin.display(description="related")
    def related_links(self, job: Job) -> str:
        return format_html(
            '<a href="{}?q={}">archive</a> · <a href="{}?q={}">ledger</a>',
            reverse("admin:queries_queryarchive_changelist"),
            job.uid,
            reverse("admin:budgets_ledgerentry_changelist"),
            job.uid,
        )

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
    list_display = (
        "created_at",
        "user_link",
        "dataset_link",
        "dp_library",
        "epsilon_cost",
        "delta_cost",
        "budget_link",
        "job_link",
    )
    list_filter = ("dp_library", "dataset_name", "user_name", "created_at")
    search_fields = ("user_name", "dataset_name", "job_uid")
    date_hierarchy = "created_at"
    fields = (*list_display, "request", "answer")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                charged_epsilon=Subquery(_charges(OuterRef("job_uid")).values("epsilon")[:1]),
                charged_delta=Subquery(_charges(OuterRef("job_uid")).values("delta")[:1]),
                budget_pk=Subquery(
                    Budget.objects.filter(user=OuterRef("user"), dataset=OuterRef("dataset")).values("pk")[:1]
                ),
            )
        )

    @admin.display(description="user", ordering="user_name")
    def user_link(self, archive: QueryArchive) -> str:
        if archive.user_id is None:
            return archive.user_name
        return _link("admin:accounts_user_change", archive.user_id, archive.user_name)

    @admin.display(description="dataset", ordering="dataset_name")
    def dataset_link(self, archive: QueryArchive) -> str:
        if archive.dataset_id is None:
            return archive.dataset_name
        return _link("admin:datasets_dataset_change", archive.dataset_id, archive.dataset_name)

    @admin.display(description="cost ε", ordering="charged_epsilon")
    def epsilon_cost(self, archive: QueryArchive) -> str:
        return amount_html(archive.charged_epsilon, "epsilon")

    @admin.display(description="cost δ", ordering="charged_delta")
    def delta_cost(self, archive: QueryArchive) -> str:
        return amount_html(archive.charged_delta, "delta")

    @admin.display(description="budget")
    def budget_link(self, archive: QueryArchive) -> str:
        return "-" if archive.budget_pk is None else _link("admin:budgets_budget_change", archive.budget_pk, "budget")

    @admin.display(description="job")
    def job_link(self, archive: QueryArchive) -> str:
        return format_html(
            '<a href="{}?q={}">{}</a>', reverse("admin:queries_job_changelist"), archive.job_uid, archive.job_uid
        )

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
