"""Budgets and the ledger in Django admin; spent amounts are read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from budgets.models import Budget, LedgerEntry


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "epsilon", "delta", "job_uid", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "dataset",
        "initial_epsilon",
        "spent_epsilon",
        "remaining_epsilon",
        "initial_delta",
        "spent_delta",
        "remaining_delta",
    )
    list_filter = ("dataset",)
    search_fields = ("user__username", "dataset__name")
    readonly_fields = ("spent_epsilon", "spent_delta", "remaining_epsilon", "remaining_delta", "created_at")
    inlines = (LedgerEntryInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Budget | None = None) -> tuple[str, ...]:
        if obj is not None:
            return ("user", "dataset", *self.readonly_fields)
        return self.readonly_fields


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "budget", "kind", "epsilon", "delta", "job_uid")
    list_filter = ("kind", "budget__dataset")
    search_fields = ("budget__user__username", "budget__dataset__name", "job_uid")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
