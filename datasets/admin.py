"""Datasets in Django admin: access settings, csvw-eo metadata validated on save, data file uploads and
metadata drafted from the data. Every change goes through the audited dataset services."""

import json
from pathlib import PurePosixPath
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode

from datasets.connectors.postgres import table_identifier
from datasets.drafts import DRAFT_LABEL, data_file_columns, metadata_draft
from datasets.metadata import InvalidMetadata, validate_metadata
from datasets.models import Dataset
from datasets.services import dataset_add, dataset_change_source, dataset_delete, dataset_replace_metadata
from datasets.uploads import dataset_upload
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
        return json.dumps(value, indent=2, ensure_ascii=False)

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


class UploadForm(forms.Form):
    dataset_name = forms.CharField(max_length=255, help_text="An existing dataset is pointed at the new file.")
    file = forms.FileField(help_text="A .csv or .parquet file, stored in the data directory under uploads/.")
    metadata = MetadataField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 100}),
        help_text="csvw-eo JSON. Leave empty to keep an existing dataset's metadata, or to draft it from the file.",
    )


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
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    list_display = ("name", "access", "path", "sql_table", "version", "updated_at")
    list_filter = ("access",)
    search_fields = ("name",)
    readonly_fields = ("version", "created_at", "updated_at")
    actions = ("draft_metadata",)

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
