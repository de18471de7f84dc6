"""Datasets in Django admin: access settings, csvw-eo metadata edited per column (the raw JSON as an
advanced view) and validated on save, data file uploads, new versions checked against the metadata, and
metadata drafted from the data. Every change goes through the audited dataset services."""

import json
from pathlib import PurePosixPath
from typing import Any

from csvw_eo.datatypes import XSD_GROUP_MAP, DataTypesGroups
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from datasets.collections import DATASET_NAME_RULE, dataset_name_check
from datasets.connectors.postgres import table_identifier
from datasets.drafts import DRAFT_LABEL, data_file_columns, metadata_draft
from datasets.metadata import InvalidMetadata, validate_metadata
from datasets.models import Dataset
from datasets.services import dataset_add, dataset_change_source, dataset_delete, dataset_replace_metadata
from datasets.uploads import dataset_upload, dataset_upload_new_version
from lomas.admin_display import ExplainedDeletion
from lomas.errors import InvalidQuery

# The Dataset fields that say where the data is.
SOURCE_FIELDS = (
    "access",
    "path",
    "s3_endpoint_url",
    "s3_bucket",
    "s3_key",
    "s3_credentials_name",
    "sql_table",
    "sql_credentials_name",
)


class MetadataField(forms.JSONField):
    """csvw-eo JSON shown indented, validated with a message naming the field at fault."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value in self.empty_values:
            return
        try:
            validate_metadata(value)
        except InvalidMetadata as exc:
            raise forms.ValidationError(str(exc)) from exc


class DatasetForm(forms.ModelForm):
    metadata = MetadataField(widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "class": "vLargeTextField"}))

    class Meta:
        model = Dataset
        fields = ("name", *SOURCE_FIELDS, "metadata")
        help_texts = {"name": f"A dataset name is {DATASET_NAME_RULE}."}

    def clean_name(self) -> str:
        try:
            return dataset_name_check(self.cleaned_data["name"])
        except InvalidQuery as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_path(self) -> str:
        value = self.cleaned_data["path"]
        if not value.startswith(("http://", "https://")) and ".." in PurePosixPath(value).parts:
            raise forms.ValidationError("The path must stay inside the data directory (no '..').")
        return value

    def clean_sql_table(self) -> str:
        value = self.cleaned_data["sql_table"]
        if value:
            try:
                table_identifier(value)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        access = cleaned.get("access")
        if access == Dataset.Access.PATH and not cleaned.get("path"):
            self.add_error("path", "A PATH_DB dataset needs a file path or URL.")
        if access == Dataset.Access.S3 and not (cleaned.get("s3_bucket") and cleaned.get("s3_key")):
            self.add_error("s3_bucket", "An S3_DB dataset needs a bucket and a key.")
        if access == Dataset.Access.SQL and not (cleaned.get("sql_table") and cleaned.get("sql_credentials_name")):
            self.add_error("sql_table", "A SQL_DB dataset needs a table and a LOMAS_SQL_CREDENTIALS entry name.")
        return cleaned


def _checked_name(name: str) -> str:
    try:
        return dataset_name_check(name)
    except InvalidQuery as exc:
        raise forms.ValidationError(exc.message) from exc


class UploadForm(forms.Form):
    dataset_name = forms.CharField(
        max_length=255,
        validators=[_checked_name],
        help_text=f"A new dataset ({DATASET_NAME_RULE}). An existing dataset's data is replaced from its page "
        f"(Upload a new version).",
    )
    file = forms.FileField(help_text="A .csv or .parquet file, stored in the data directory under uploads/.")
    metadata = MetadataField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 100}),
        help_text="csvw-eo JSON; the file is checked against it. Leave empty to draft it from the file.",
    )


class NewVersionForm(forms.Form):
    file = forms.FileField(help_text="A .csv or .parquet file with the metadata's columns.")
    confirm = forms.BooleanField(
        label="Replace the data researchers query by this file",
        error_messages={"required": "Tick the box to replace the dataset's data."},
    )


# The fields of a column the per-column form edits; the others are kept as they are.
COLUMN_FIELDS = ("datatype", "minimum", "maximum", "keyValues", "nullableProportion")


class ColumnForm(forms.Form):
    """One csvw-eo column: its type, bounds, categories and how often it may be null."""

    name = forms.CharField(disabled=True, required=False)
    datatype = forms.ChoiceField(choices=sorted((kind.value, kind.value) for kind in XSD_GROUP_MAP))
    minimum = forms.CharField(required=False, help_text="Number or ISO date")
    maximum = forms.CharField(required=False)
    categories = forms.CharField(required=False, help_text="Comma-separated known values (keyValues)")
    nullable_proportion = forms.FloatField(required=False, min_value=0, max_value=1, label="Nullable share")

    @staticmethod
    def initial_of(column: dict[str, Any]) -> dict[str, Any]:
        """The form's initial values for a stored column."""
        return {
            "name": column["name"],
            "datatype": column["datatype"],
            "minimum": _bound_text(column.get("minimum")),
            "maximum": _bound_text(column.get("maximum")),
            "categories": ", ".join(str(value) for value in column.get("keyValues") or []),
            "nullable_proportion": column.get("nullableProportion"),
        }

    def column(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored column with this form's fields applied (empty fields removed)."""
        data = self.cleaned_data
        column = {key: value for key, value in stored.items() if key not in COLUMN_FIELDS}
        numeric = XSD_GROUP_MAP[data["datatype"]] in (DataTypesGroups.INTEGER, DataTypesGroups.FLOAT)
        values = {
            "datatype": data["datatype"],
            "minimum": _bound_value(data["minimum"], numeric=numeric),
            "maximum": _bound_value(data["maximum"], numeric=numeric),
            "keyValues": [value.strip() for value in data["categories"].split(",") if value.strip()] or None,
            "nullableProportion": data["nullable_proportion"],
        }
        return {**column, **{key: value for key, value in values.items() if value is not None}}


ColumnFormSet = forms.formset_factory(ColumnForm, extra=0)


def _bound_text(value: Any) -> str:
    return "" if value is None else str(value)


def _bound_value(text: str, *, numeric: bool) -> Any:
    if not text.strip():
        return None
    if not numeric:
        return text.strip()
    try:
        number = float(text)
    except ValueError as exc:
        raise InvalidQuery(f"The bound {text!r} is not a number.") from exc
    return int(number) if number.is_integer() and "." not in text else number


class DraftForm(forms.Form):
    dataset_name = forms.CharField(widget=forms.HiddenInput)
    path = forms.CharField(widget=forms.HiddenInput)
    privacy_unit = forms.ChoiceField(help_text="The column identifying one privacy unit (a person, a household...).")


class SaveDraftForm(forms.Form):
    dataset_name = forms.CharField(widget=forms.HiddenInput)
    path = forms.CharField(widget=forms.HiddenInput)
    metadata = MetadataField(widget=forms.Textarea(attrs={"rows": 30, "cols": 100}))
    reviewed = forms.BooleanField(
        label="I have reviewed this metadata and it may be published to researchers",
        error_messages={"required": "Tick the review box to save metadata derived from private data."},
    )


@admin.register(Dataset)
class DatasetAdmin(ExplainedDeletion, admin.ModelAdmin):
    form = DatasetForm
    list_display = ("name", "access", "path", "sql_table", "version", "updated_at", "related_links")
    list_filter = ("access",)
    search_fields = ("name",)
    readonly_fields = ("version", "created_at", "updated_at", "columns_table", "related_links")
    actions = ("draft_metadata",)

    def get_fieldsets(self, request: HttpRequest, obj: Dataset | None = None) -> list[tuple[str | None, dict]]:
        if obj is None:
            return [(None, {"fields": ("name", *SOURCE_FIELDS, "metadata")})]
        return [
            (None, {"fields": ("name", *SOURCE_FIELDS, "version", "created_at", "updated_at", "related_links")}),
            ("Columns", {"fields": ("columns_table",)}),
            (
                "Advanced: the raw csvw-eo JSON",
                {"fields": ("metadata",), "classes": ("collapse",)},
            ),
        ]

    @admin.display(description="columns")
    def columns_table(self, dataset: Dataset) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    initial["name"],
                    initial["datatype"],
                    initial["minimum"],
                    initial["maximum"],
                    initial["categories"],
                    "" if initial["nullable_proportion"] is None else initial["nullable_proportion"],
                )
                for initial in map(ColumnForm.initial_of, dataset.metadata["tableSchema"]["columns"])
            ),
        )
        return format_html(
            '<table id="dataset-columns"><thead><tr><th>Column</th><th>Type</th><th>Minimum</th><th>Maximum</th>'
            "<th>Categories</th><th>Nullable share</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a class="button" href="{}">Edit the columns</a></p>',
            rows,
            reverse("admin:datasets_dataset_columns", args=[dataset.pk]),
        )

    @admin.display(description="related")
    def related_links(self, dataset: Dataset) -> str:
        return format_html(
            '<a href="{}?dataset__id__exact={}">budgets</a> · <a href="{}?budget__dataset__id__exact={}">ledger</a>'
            ' · <a href="{}?dataset_name={}">archive</a> · <a href="{}?dataset__id__exact={}">jobs</a>'
            ' · <a href="{}?target={}">audit</a>',
            reverse("admin:budgets_budget_changelist"),
            dataset.pk,
            reverse("admin:budgets_ledgerentry_changelist"),
            dataset.pk,
            reverse("admin:queries_queryarchive_changelist"),
            dataset.name,
            reverse("admin:queries_job_changelist"),
            dataset.pk,
            reverse("admin:accounts_auditentry_changelist"),
            dataset.name,
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Dataset | None = None) -> tuple[str, ...]:
        return ("name", *self.readonly_fields) if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Dataset, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        source = {field: data[field] for field in SOURCE_FIELDS}
        if not change:
            saved = dataset_add(actor=request.user, name=data["name"], metadata=data["metadata"], source=source)
            obj.pk = saved.pk
            obj._state.adding = False
        else:
            stored = Dataset.objects.get(pk=obj.pk)
            if set(SOURCE_FIELDS) & set(form.changed_data):
                stored = dataset_change_source(actor=request.user, dataset=stored, source=source)
            if "metadata" in form.changed_data:
                dataset_replace_metadata(actor=request.user, dataset=stored, metadata=data["metadata"])
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        dataset_delete(actor=request.user, dataset=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        for dataset in queryset:
            dataset_delete(actor=request.user, dataset=dataset)

    @admin.action(description="Draft metadata from the data (csvw-eo generator)")
    def draft_metadata(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one dataset to draft its metadata.", messages.ERROR)
            return None
        dataset = queryset.get()
        if dataset.access != Dataset.Access.PATH or dataset.path.startswith(("http://", "https://")):
            self.message_user(
                request, "Metadata can only be drafted from a file in the data directory.", messages.ERROR
            )
            return None
        return HttpResponseRedirect(self._draft_url(dataset.name, dataset.path))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="datasets_dataset_upload"),
            path(
                "<path:object_id>/new-version/",
                self.admin_site.admin_view(self.new_version_view),
                name="datasets_dataset_new_version",
            ),
            path(
                "<path:object_id>/columns/",
                self.admin_site.admin_view(self.columns_view),
                name="datasets_dataset_columns",
            ),
            path(
                "draft-metadata/",
                self.admin_site.admin_view(self.draft_view),
                name="datasets_dataset_draft_metadata",
            ),
        ]
        return [*own, *super().get_urls()]

    @staticmethod
    def _draft_url(dataset_name: str, relative: str) -> str:
        query = urlencode({"dataset_name": dataset_name, "path": relative})
        return f"{reverse('admin:datasets_dataset_draft_metadata')}?{query}"

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV or parquet file into the data directory, creating or updating a PATH_DB dataset."""
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = UploadForm(request.POST or None, request.FILES or None)
        error = None
        if request.method == "POST" and form.is_valid():
            name = form.cleaned_data["dataset_name"]
            try:
                relative, dataset = dataset_upload(
                    actor=request.user,
                    dataset_name=name,
                    upload=form.cleaned_data["file"],
                    metadata=form.cleaned_data["metadata"] or None,
                )
            except InvalidQuery as exc:
                error = exc.message
            else:
                if dataset is None:
                    self.message_user(
                        request, f"Stored {relative}. Draft the metadata of {name} to register it.", messages.INFO
                    )
                    return HttpResponseRedirect(self._draft_url(name, relative))
                self.message_user(request, f"Stored {relative} as the data of {name}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
        context = self._context(
            request,
            "Upload a data file",
            form=form,
            error=error,
            max_bytes=settings.LOMAS_ADMIN_UPLOAD_MAX_BYTES,
        )
        return TemplateResponse(request, "admin/datasets/dataset/upload.html", context)

    def new_version_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Replace a dataset's data by an uploaded file that fits its metadata; budgets and spend stay."""
        dataset = get_object_or_404(Dataset, pk=object_id)
        if not self.has_change_permission(request, dataset):
            return HttpResponseRedirect(reverse("admin:index"))
        form = NewVersionForm(request.POST or None, request.FILES or None)
        error = None
        if request.method == "POST" and form.is_valid():
            try:
                dataset = dataset_upload_new_version(
                    actor=request.user, dataset=dataset, upload=form.cleaned_data["file"]
                )
            except InvalidQuery as exc:
                error = exc.message
            else:
                self.message_user(
                    request,
                    f"{dataset.name} now reads {dataset.path} (version {dataset.version}); budgets and spend are kept.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
        context = self._context(
            request,
            f"Upload a new version of {dataset.name}",
            original=dataset,
            form=form,
            error=error,
            max_bytes=settings.LOMAS_ADMIN_UPLOAD_MAX_BYTES,
        )
        return TemplateResponse(request, "admin/datasets/dataset/new_version.html", context)

    def columns_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Edit each column's type, bounds, categories and nullable share; saved as one audited metadata change."""
        dataset = get_object_or_404(Dataset, pk=object_id)
        if not self.has_change_permission(request, dataset):
            return HttpResponseRedirect(reverse("admin:index"))
        columns = dataset.metadata["tableSchema"]["columns"]
        formset = ColumnFormSet(request.POST or None, initial=[ColumnForm.initial_of(column) for column in columns])
        error = None
        if request.method == "POST" and formset.is_valid():
            try:
                edited = [form.column(stored) for form, stored in zip(formset.forms, columns, strict=True)]
                metadata = {**dataset.metadata, "tableSchema": {**dataset.metadata["tableSchema"], "columns": edited}}
                if metadata != dataset.metadata:
                    dataset_replace_metadata(actor=request.user, dataset=dataset, metadata=metadata)
            except InvalidQuery as exc:
                error = exc.message
            else:
                self.message_user(request, f"Saved the columns of {dataset.name}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
        context = self._context(
            request, f"Edit the columns of {dataset.name}", original=dataset, formset=formset, error=error
        )
        return TemplateResponse(request, "admin/datasets/dataset/columns.html", context)

    def draft_view(self, request: HttpRequest) -> HttpResponse:
        """Pick the privacy unit → review the drafted metadata → save it only when confirmed."""
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        source = request.POST if request.method == "POST" else request.GET
        name, relative = source.get("dataset_name", ""), source.get("path", "")
        context = self._context(
            request, f"Draft the metadata of {name}", dataset_name=name, path=relative, label=DRAFT_LABEL
        )
        try:
            columns = data_file_columns(relative)
        except InvalidQuery as exc:
            context["error"] = exc.message
            return TemplateResponse(request, "admin/datasets/dataset/draft_metadata.html", context)
        if request.method == "POST" and "save" in request.POST:
            save_form = SaveDraftForm(request.POST)
            if save_form.is_valid():
                return self._save_draft(request, name, relative, save_form.cleaned_data["metadata"], context)
            context["save_form"] = save_form
            return TemplateResponse(request, "admin/datasets/dataset/draft_metadata.html", context)
        form = DraftForm(request.POST or None, initial={"dataset_name": name, "path": relative})
        form.fields["privacy_unit"].choices = [(column, column) for column in columns]
        context["form"] = form
        if request.method == "POST" and form.is_valid():
            try:
                draft = metadata_draft(relative=relative, privacy_unit=form.cleaned_data["privacy_unit"])
            except InvalidQuery as exc:
                context["error"] = exc.message
            else:
                context["save_form"] = SaveDraftForm(
                    initial={"dataset_name": name, "path": relative, "metadata": draft}
                )
        return TemplateResponse(request, "admin/datasets/dataset/draft_metadata.html", context)

    def _save_draft(
        self, request: HttpRequest, name: str, relative: str, metadata: dict[str, Any], context: dict[str, Any]
    ) -> HttpResponse:
        dataset = Dataset.objects.filter(name=name).first()
        try:
            if dataset is None:
                source = {"access": Dataset.Access.PATH, "path": relative}
                dataset = dataset_add(actor=request.user, name=name, metadata=metadata, source=source)
            else:
                dataset = dataset_replace_metadata(actor=request.user, dataset=dataset, metadata=metadata)
        except InvalidQuery as exc:
            context["error"] = exc.message
            return TemplateResponse(request, "admin/datasets/dataset/draft_metadata.html", context)
        self.message_user(request, f"Saved the reviewed metadata of {name}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
