"""Writes on datasets."""

from typing import Any

from django.db import transaction
from django.db.models import F

from accounts.services import Actor, audit_record
from datasets.collections import DatasetRecord
from datasets.metadata import InvalidMetadata, validate_metadata
from datasets.models import Dataset
from datasets.selectors import dataset_require_new_name
from datasets.signals import dataset_deleting
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
    sql_credentials_name: str = "",
    sql_table: str = "",
) -> Dataset:
    """Register a dataset named by the dataset name rule, with validated csvw-eo metadata."""
    dataset_require_new_name(name=name)
    if access == Dataset.Access.PATH and not path:
        raise InvalidQuery(f"Dataset {name} needs a path or URL.")
    if access == Dataset.Access.S3 and not (s3_bucket and s3_key):
        raise InvalidQuery(f"Dataset {name} needs an S3 bucket and key.")
    if access == Dataset.Access.SQL and not (sql_credentials_name and sql_table):
        raise InvalidQuery(f"Dataset {name} needs a SQL credentials name and table.")
    return Dataset.objects.create(
        name=name,
        metadata=_checked(metadata),
        access=access,
        path=path,
        s3_endpoint_url=s3_endpoint_url,
        s3_bucket=s3_bucket,
        s3_key=s3_key,
        s3_credentials_name=s3_credentials_name,
        sql_credentials_name=sql_credentials_name,
        sql_table=sql_table,
    )


@transaction.atomic
def dataset_set_metadata(*, dataset: Dataset, metadata: dict[str, Any]) -> Dataset:
    """Replace a dataset's metadata (validated); cached frames of the old version are dropped."""
    dataset.metadata = _checked(metadata)
    dataset.version = F("version") + 1
    dataset.save(update_fields=["metadata", "version", "updated_at"])
    dataset.refresh_from_db(fields=["version"])
    return dataset


def _source_of(dataset: Dataset) -> dict[str, str]:
    return {
        "access": dataset.access,
        "path": dataset.path,
        "s3_endpoint_url": dataset.s3_endpoint_url,
        "s3_bucket": dataset.s3_bucket,
        "s3_key": dataset.s3_key,
        "s3_credentials_name": dataset.s3_credentials_name,
        "sql_credentials_name": dataset.sql_credentials_name,
        "sql_table": dataset.sql_table,
    }


@transaction.atomic
def dataset_add(*, actor: Actor, name: str, metadata: dict[str, Any], source: dict[str, str]) -> Dataset:
    """Register a dataset (source = Dataset access fields), audited."""
    dataset = dataset_create(name=name, metadata=metadata, **source)
    audit_record(actor=actor, action="dataset.add", target=name, details={"source": _source_of(dataset)})
    return dataset


@transaction.atomic
def dataset_delete(*, actor: Actor, dataset: Dataset) -> None:
    """Delete a dataset; receivers of dataset_deleting may refuse (budgets refuses while ledgers refer to it).

    Archived queries stay, under the dataset's name.
    """
    details: dict[str, Any] = {"source": _source_of(dataset)}
    for _receiver, extra in dataset_deleting.send(sender=Dataset, dataset=dataset):
        details.update(extra)
    name = dataset.name
    dataset.delete()
    audit_record(actor=actor, action="dataset.delete", target=name, details=details)


@transaction.atomic
def dataset_replace_metadata(*, actor: Actor, dataset: Dataset, metadata: dict[str, Any]) -> Dataset:
    """Replace a dataset's metadata (validated), audited with the old and new documents."""
    old = dataset.metadata
    dataset = dataset_set_metadata(dataset=dataset, metadata=metadata)
    audit_record(
        actor=actor, action="dataset.set_metadata", target=dataset.name, details={"old": old, "new": dataset.metadata}
    )
    return dataset


@transaction.atomic
def dataset_change_source(*, actor: Actor, dataset: Dataset, source: dict[str, str]) -> Dataset:
    """Point a dataset at other data (cached frames of the old version are dropped), audited old → new."""
    old = _source_of(dataset)
    for field, value in {**dict.fromkeys(old, ""), **source}.items():
        setattr(dataset, field, value)
    dataset.version = F("version") + 1
    dataset.save(update_fields=[*old, "version", "updated_at"])
    dataset.refresh_from_db(fields=["version"])
    audit_record(actor=actor, action="dataset.set_source", target=dataset.name, details={"old": old, "new": source})
    return dataset


@transaction.atomic
def dataset_drop_all(*, actor: Actor) -> int:
    """Delete every dataset (each one audited like dataset_delete); returns how many."""
    datasets = list(Dataset.objects.order_by("name"))
    for dataset in datasets:
        dataset_delete(actor=actor, dataset=dataset)
    return len(datasets)


@transaction.atomic
def dataset_collection_load(
    *,
    actor: Actor,
    records: list[DatasetRecord],
    clean: bool = False,
    overwrite_datasets: bool = False,
    overwrite_metadata: bool = False,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Load a dataset collection in one transaction and return the changes made.

    New datasets are added. An existing dataset's source and metadata are replaced
    only with `overwrite_datasets` / `overwrite_metadata`, otherwise left as they are.
    `clean` makes the database hold exactly the file's datasets: the others are
    deleted and the listed ones overwritten, while their budgets and ledgers stay.
    With `dry_run` everything is rolled back and the changes are only reported.
    """
    changes: list[dict[str, Any]] = []
    listed = {record.name for record in records}
    if clean:
        for dataset in Dataset.objects.exclude(name__in=listed).order_by("name"):
            dataset_delete(actor=actor, dataset=dataset)
            changes.append({"action": "delete", "collection": "datasets", "name": dataset.name})
    overwrite_datasets, overwrite_metadata = overwrite_datasets or clean, overwrite_metadata or clean
    for record in records:
        dataset = Dataset.objects.filter(name=record.name).first()
        if dataset is None:
            dataset_add(actor=actor, name=record.name, metadata=record.metadata, source=record.source)
            changes.append({"action": "add", "collection": "datasets", "name": record.name})
            continue
        updated = []
        if overwrite_datasets and _source_of(dataset) != {**_source_of(Dataset()), **record.source}:
            dataset = dataset_change_source(actor=actor, dataset=dataset, source=record.source)
            updated.append("source")
        if overwrite_metadata and dataset.metadata != record.metadata:
            dataset_replace_metadata(actor=actor, dataset=dataset, metadata=record.metadata)
            updated.append("metadata")
        action = "update" if updated else "keep"
        changes.append({"action": action, "collection": "datasets", "name": record.name, "fields": updated})
    if dry_run:
        transaction.set_rollback(True)
    return changes
