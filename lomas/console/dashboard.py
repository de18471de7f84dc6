"""Admin pages beyond the model admins: the service overview and collection import/export."""

import io
import json
import secrets
import zipfile
from datetime import timedelta
from typing import Any

import yaml
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from budgets.selectors import dataset_budget_list, epsilon_spent_per_day, top_consumers
from lomas.console.charts import bar_charts_on_one_scale, cumulative_charts
from lomas.console.collections import collection_export, collection_import, collection_text_from_zip
from lomas.console.selectors import budgets_near_exhaustion, dataset_spend_totals, jobs_needing_attention
from lomas.errors import InvalidQuery
from lomas.selectors import service_health
from queries.selectors import job_counts_recent

# Days shown by the overview's spending chart.
CHART_DAYS = 90
# Largest collection file the import page accepts, in bytes.
MAX_COLLECTION_BYTES = 2 * 1024 * 1024
# Session key under which a previewed import waits for confirmation.
_PENDING_IMPORT = "lomas_pending_collection_import"


def overview(request: HttpRequest) -> TemplateResponse:
    """Service health, spend and remaining budget per dataset, cumulative ε over time, the top consumers
    on one scale, budgets close to exhaustion, and the jobs failed or in progress."""
    today = timezone.localdate()
    first_day = today - timedelta(days=CHART_DAYS - 1)
    spent = epsilon_spent_per_day(days=CHART_DAYS, today=today)
    context = {
        **admin.site.each_context(request),
        "title": "Service overview",
        "health": service_health(),
        "jobs": job_counts_recent(hours=24),
        "failed_since": (timezone.now() - timedelta(hours=24)).strftime("%Y-%m-%d %H:%M:%S"),
        "attention": jobs_needing_attention(),
        "datasets": dataset_spend_totals(),
        "near_exhaustion": budgets_near_exhaustion(),
        "charts": cumulative_charts(spent, first_day=first_day, days=CHART_DAYS),
        "first_day": first_day,
        "today": today,
        "consumers": bar_charts_on_one_scale(top_consumers()),
        "dataset_budgets": dataset_budget_list(),
    }
    return TemplateResponse(request, "admin/lomas/overview.html", context)


class CollectionImportForm(forms.Form):
    collection = forms.ChoiceField(
        choices=(("users", "users"), ("datasets", "datasets")), widget=forms.RadioSelect, initial="users"
    )
    file = forms.FileField(
        label="Collection file (YAML or zip)",
        help_text="lomas v0.4 (user_name) or v0.5 (id) layout; datasets also as exported here: the YAML with "
        "inline metadata, or the zip with its metadata files.",
    )
    mode = forms.ChoiceField(
        choices=(
            ("add", "Add new entries only"),
            ("overwrite", "Overwrite existing entries"),
            ("clean", "Clean: replace the whole collection"),
        ),
        widget=forms.RadioSelect,
        initial="add",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_COLLECTION_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_COLLECTION_BYTES // 1024 // 1024} MiB.")
        return upload


def _summary(changes: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(("add", "update", "delete", "keep"), 0)
    for change in changes:
        counts[change["action"]] += 1
    return counts


def _require_superuser(request: HttpRequest) -> None:
    if not request.user.is_superuser:
        raise PermissionDenied("Only lomas admins can import or export collections.")


def collections_import(request: HttpRequest) -> HttpResponse:
    """Upload a collection file → dry-run preview → confirm to apply it in one audited transaction."""
    _require_superuser(request)
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Import a collection"}
    if request.method == "POST" and "confirm" in request.POST:
        return _confirm_import(request, context)
    form = CollectionImportForm(request.POST or None, request.FILES or None)
    context["form"] = form
    if request.method == "POST" and form.is_valid():
        name, mode = form.cleaned_data["collection"], form.cleaned_data["mode"]
        data = form.cleaned_data["file"].read()
        try:
            text = (
                collection_text_from_zip(data)
                if zipfile.is_zipfile(io.BytesIO(data))
                else data.decode("utf-8", errors="replace")
            )
            changes = collection_import(actor=request.user, name=name, text=text, mode=mode, dry_run=True)
        except InvalidQuery as exc:
            context["error"] = exc.message
        else:
            token = secrets.token_urlsafe(16)
            request.session[_PENDING_IMPORT] = {"token": token, "collection": name, "mode": mode, "text": text}
            context.update(
                preview=changes, summary=_summary(changes), token=token, collection=name, mode=mode, form=None
            )
    return TemplateResponse(request, "admin/lomas/collections_import.html", context)


def _confirm_import(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    pending = request.session.get(_PENDING_IMPORT)
    if not pending or pending["token"] != request.POST.get("token"):
        messages.error(request, "This preview has expired: upload the file again.")
        return redirect("lomas_admin_collections_import")
    name = pending["collection"]
    try:
        changes = collection_import(
            actor=request.user, name=name, text=pending["text"], mode=pending["mode"], dry_run=False
        )
    except InvalidQuery as exc:
        messages.error(request, exc.message)
        return redirect("lomas_admin_collections_import")
    del request.session[_PENDING_IMPORT]
    counts = _summary(changes)
    messages.success(
        request,
        f"Imported the {name} collection: {counts['add']} added, {counts['update']} updated, "
        f"{counts['delete']} deleted.",
    )
    return redirect("lomas_admin_collections_import")


def collections_export(request: HttpRequest, name: str) -> HttpResponse:
    """Download the users or datasets collection as a re-importable YAML file (no secrets)."""
    _require_superuser(request)
    try:
        document, _ = collection_export(name=name)
    except InvalidQuery as exc:
        messages.error(request, exc.message)
        return redirect("lomas_admin_collections_import")
    response = HttpResponse(
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True), content_type="application/yaml"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}.yaml"'
    return response


def collections_export_datasets_archive(request: HttpRequest) -> HttpResponse:
    """Download the datasets collection with each dataset's csvw-eo metadata file, as one zip."""
    _require_superuser(request)
    document, files = collection_export(name="datasets", inline_metadata=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("datasets.yaml", yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        for path, metadata in files.items():
            archive.writestr(path, json.dumps(metadata, indent=2))
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="datasets.zip"'
    return response
