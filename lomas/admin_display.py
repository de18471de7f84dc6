"""How admin pages show privacy amounts and JSON documents, and pages that only show records."""

import json
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString


def amount_text(value: Decimal | None) -> str:
    """A privacy amount for display, exact and without trailing zeros (10 → "10", 0.0050 → "0.005")."""
    if value is None:
        return "-"
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


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
