"""Datasets in Django admin; metadata is validated as csvw-eo on save."""

from typing import Any

from django import forms
from django.contrib import admin

from datasets.metadata import InvalidMetadata, validate_metadata
from datasets.models import Dataset


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = (
            "name",
            "access",
            "path",
            "s3_endpoint_url",
            "s3_bucket",
            "s3_key",
            "s3_credentials_name",
            "metadata",
        )

    def clean_metadata(self) -> dict[str, Any]:
        try:
            return validate_metadata(self.cleaned_data["metadata"])
        except InvalidMetadata as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    list_display = ("name", "access", "path", "version", "updated_at")
    search_fields = ("name",)
    readonly_fields = ("version", "created_at", "updated_at")

    def save_model(self, request: Any, obj: Dataset, form: forms.ModelForm, change: bool) -> None:
        if change and form.changed_data:
            obj.version += 1
        super().save_model(request, obj, form, change)
