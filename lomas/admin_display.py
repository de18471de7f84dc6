"""How admin pages show privacy amounts and JSON documents, and pages that only show records."""

import json
from decimal import Decimal
from typing import Any, Literal

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from lomas.amounts import amount_text, delta_short, epsilon_short
from lomas.errors import LomasError


def amount_html(value: Decimal | None, kind: Literal["epsilon", "delta"]) -> SafeString:
    """A short ε or δ with its exact decimal on hover (the title attribute)."""
    short = epsilon_short(value) if kind == "epsilon" else delta_short(value)
    return format_html('<span class="lomas-amount" title="{}">{}</span>', amount_text(value), short)


def pretty_json(document: Any) -> SafeString:
    """A JSON document indented in a <pre> block (escaped)."""
    return format_html(
        '<pre class="lomas-json" style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin page of records that are never added, changed or deleted by hand (ledger, audit, jobs)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ExplainedDeletion(admin.ModelAdmin):
    """Deletion that says why it is refused (deletion_refusal, or a service's LomasError) instead of
    Django's "you don't have permission"."""

    def deletion_refusal(self, obj: Any) -> str | None:
        """Why this object may not be deleted, or None."""
        return None

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        refusal = self.deletion_refusal(obj) if obj is not None else None
        if refusal:
            return self._refused(request, object_id, refusal)
        try:
            with transaction.atomic():
                return super().delete_view(request, object_id, extra_context)
        except LomasError as exc:
            return self._refused(request, object_id, exc.message)

    def _refused(self, request: HttpRequest, object_id: str, reason: str) -> HttpResponse:
        self.message_user(request, f"Not deleted: {reason}", messages.ERROR)
        opts = self.opts
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))
