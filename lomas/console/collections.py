"""The lomas admin database's named collections (spec §4.4), mapped onto this project's models.

`users` are the lomas users with their budgets, `datasets` the datasets, `metadata`
each dataset's csvw-eo document, `queries_archive` (lomas ≤0.4: `queries_archives`)
the archived queries.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.selectors import user_list
from accounts.services import Actor, audit_record, user_drop_all
from budgets.collections import user_budget_records_from_collection, user_to_wire
from budgets.selectors import budget_kept_to_wire
from budgets.services import user_collection_load
from datasets.collections import dataset_records_from_collection, dataset_to_wire
from datasets.metadata import metadata_to_wire
from datasets.selectors import dataset_list
from datasets.services import dataset_collection_load, dataset_drop_all
from lomas.collection_files import collection_read_yaml
from lomas.errors import InvalidQuery
from queries.selectors import archive_list
from queries.services import archive_drop_all

COLLECTIONS = ("users", "datasets", "metadata", "queries_archive", "queries_archives")


def _check(name: str) -> None:
    if name not in COLLECTIONS:
        raise InvalidQuery(f"Unknown collection {name}: one of {', '.join(COLLECTIONS)}.")


@transaction.atomic
def collection_drop(*, actor: Actor, name: str) -> dict[str, list[dict[str, Any]]]:
    """Empty a collection: every researcher (admins stay), every dataset, or every archive.

    Nothing is erased from the ledger: dropped researchers are tombstoned with their ledgers, and
    datasets with budgets are refused. Metadata lives in its dataset's row and is dropped with the
    datasets only. Returns the spent amounts the ledger keeps, per dropped researcher.
    """
    _check(name)
    if name == "metadata":
        raise InvalidQuery("Metadata is stored with its dataset: drop the datasets collection instead.")
    if name in ("queries_archive", "queries_archives"):
        archive_drop_all(actor=actor)
        return {}
    if name == "datasets":
        deleted = dataset_drop_all(actor=actor)
        audit_record(actor=actor, action="collection.drop", target=name, details={"deleted": deleted})
        return {}
    names = user_drop_all(actor=actor)
    kept = {username: budget_kept_to_wire(user=User.objects.get(username=username)) for username in names}
    audit_record(actor=actor, action="collection.drop", target=name, details={"deleted": len(names), "kept": kept})
    return kept


def collection_get(*, name: str) -> Any:
    """A collection as plain JSON, in the lomas shapes (users without secrets)."""
    _check(name)
    if name == "users":
        return [user_to_wire(user) for user in user_list()]
    if name == "datasets":
        return [dataset_to_wire(dataset) for dataset in dataset_list()]
    if name == "metadata":
        return {dataset.name: metadata_to_wire(dataset.metadata) for dataset in dataset_list()}
    return archive_list()


def collection_export(*, name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A re-importable collection file for users or datasets, and the metadata files it names.

    Dataset metadata is exported in its stored csvw-eo JSON-LD form, at `metadata/<dataset>.json`.
    """
    if name == "users":
        return {"users": collection_get(name="users")}, {}
    if name != "datasets":
        raise InvalidQuery("Only the users and datasets collections can be exported as collection files.")
    datasets = dataset_list()
    files = {f"metadata/{dataset.name}.json": dataset.metadata for dataset in datasets}
    return {"datasets": [dataset_to_wire(dataset) for dataset in datasets]}, files


# How an import treats entries that already exist: keep them, overwrite them, or replace the whole collection.
IMPORT_MODES = ("add", "overwrite", "clean")


@transaction.atomic
def collection_import(*, actor: Actor, name: str, text: str | bytes, mode: str, dry_run: bool) -> list[dict[str, Any]]:
    """Load a users or datasets collection file (either upstream layout) in one transaction, audited.

    `mode` is one of IMPORT_MODES; with `dry_run` nothing is kept and the changes that
    would be made are returned. Relative metadata paths of datasets are under LOMAS_DATA_DIR.
    """
    if mode not in IMPORT_MODES:
        raise InvalidQuery(f"Unknown import mode {mode}: one of {', '.join(IMPORT_MODES)}.")
    if name == "users":
        records = user_budget_records_from_collection(collection_read_yaml(text, key="users"))
        changes = user_collection_load(
            actor=actor, records=records, clean=mode == "clean", overwrite=mode == "overwrite", dry_run=dry_run
        )
    elif name == "datasets":
        entries = collection_read_yaml(text, key="datasets")
        datasets = dataset_records_from_collection(entries, base_dir=Path(settings.LOMAS_DATA_DIR))
        changes = dataset_collection_load(
            actor=actor,
            records=datasets,
            clean=mode == "clean",
            overwrite_datasets=mode == "overwrite",
            overwrite_metadata=mode == "overwrite",
            dry_run=dry_run,
        )
    else:
        raise InvalidQuery("Only the users and datasets collections can be imported from collection files.")
    if not dry_run:
        audit_record(actor=actor, action="collection.import", target=name, details={"mode": mode, "changes": changes})
    return changes
