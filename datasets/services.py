"""Writes on datasets."""

from typing import Any

from django.db import transaction
from django.db.models import F

from datasets.metadata import InvalidMetadata, validate_metadata
from datasets.models import Dataset
from lomas.errors import InvalidQuery


def _checked(metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_metadata(metadata)
    except InvalidMetadata as exc:
        raise InvalidQuery(f"Invalid metadata: {exc}") from exc


@transaction.atomic
def dataset_create(
    *,
    name: str,
    metadata: dict[str, Any],
    path: str = "",
    access: str = Dataset.Access.PATH,
    s3_endpoint_url: str = "",
    s3_bucket: str = "",
    s3_key: str = "",
    s3_credentials_name: str = "",
) -> Dataset:
    """Register a dataset with validated csvw-eo metadata."""
    if Dataset.objects.filter(name=name).exists():
        raise InvalidQuery(f"Dataset {name} already exists.")
    if access == Dataset.Access.PATH and not path:
        raise InvalidQuery(f"Dataset {name} needs a path or URL.")
    if access == Dataset.Access.S3 and not (s3_bucket and s3_key):
        raise InvalidQuery(f"Dataset {name} needs an S3 bucket and key.")
    return Dataset.objects.create(
        name=name,
        metadata=_checked(metadata),
        access=access,
        path=path,
        s3_endpoint_url=s3_endpoint_url,
        s3_bucket=s3_bucket,
        s3_key=s3_key,
        s3_credentials_name=s3_credentials_name,
    )


@transaction.atomic
def dataset_set_metadata(*, dataset: Dataset, metadata: dict[str, Any]) -> Dataset:
    """Replace a dataset's metadata (validated); cached frames of the old version are dropped."""
    dataset.metadata = _checked(metadata)
    dataset.version = F("version") + 1
    dataset.save(update_fields=["metadata", "version", "updated_at"])
    dataset.refresh_from_db(fields=["version"])
    return dataset
