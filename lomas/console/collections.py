"""The lomas admin database's named collections (spec §4.4), mapped onto this project's models.

`users` are the lomas users with their budgets, `datasets` the datasets, `metadata`
each dataset's csvw-eo document, `queries_archive` (lomas ≤0.4: `queries_archives`)
the archived queries.
"""

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import yaml
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


def collection_export(*, name: str, inline_metadata: bool = True) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A re-importable collection file for users or datasets, and the metadata files it names.

    Dataset metadata is exported in its stored csvw-eo JSON-LD form: inline in each entry
    (`metadata`), or else as files at `metadata/<dataset>.json` (the zip export).
    """
    if name == "users":
        return {"users": collection_get(name="users")}, {}
    if name != "datasets":
        raise InvalidQuery("Only the users and datasets collections can be exported as collection files.")
    datasets = dataset_list()
    if inline_metadata:
        return {"datasets": [{**dataset_to_wire(dataset), "metadata": dataset.metadata} for dataset in datasets]}, {}
    files = {f"metadata/{dataset.name}.json": dataset.metadata for dataset in datasets}
    return {"datasets": [dataset_to_wire(dataset) for dataset in datasets]}, files


def collection_text_from_zip(data: bytes) -> str:
    """The datasets.yaml of an exported zip, with each metadata file the zip holds inlined in its entry."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "datasets.yaml" not in names:
                raise InvalidQuery("The zip holds no datasets.yaml.")
            entries = collection_read_yaml(archive.read("datasets.yaml"), key="datasets")
            for entry in entries:
                access = entry.get("metadata_access") if isinstance(entry, dict) else None
                path = access.get("path") if isinstance(access, dict) else None
                if isinstance(path, str) and path in names and "metadata" not in entry:
                    entry["metadata"] = json.loads(archive.read(path))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidQuery(f"Cannot read the zip ({type(exc).__name__}).") from exc
    return yaml.safe_dump({"datasets": entries}, sort_keys=False, allow_unicode=True)


# How an import treats entries that already exist: keep them, overwrite them, or replace the whole collection.
IMPORT_MODES = ("add", "overwrite", "clean")


# Longest old or new value an import preview shows (longer ones are cut with "…").
PREVIEW_VALUE_CHARS = 80


class _PreviewDone(Exception):
    """Rolls a previewed import back once its outcome has been read."""


@transaction.atomic
def collection_import(*, actor: Actor, name: str, text: str | bytes, mode: str, dry_run: bool) -> list[dict[str, Any]]:
    """Load a users or datasets collection file (either upstream layout) in one transaction, audited.

    `mode` is one of IMPORT_MODES; with `dry_run` nothing is kept and the changes that
    would be made are returned, each update with the `diff` of its fields (old → new).
    Relative metadata paths of datasets are under LOMAS_DATA_DIR.
    """
    if mode not in IMPORT_MODES:
        raise InvalidQuery(f"Unknown import mode {mode}: one of {', '.join(IMPORT_MODES)}.")
    if name not in ("users", "datasets"):
        raise InvalidQuery("Only the users and datasets collections can be imported from collection files.")
    if not dry_run:
        changes = _load(actor=actor, name=name, text=text, mode=mode)
        audit_record(actor=actor, action="collection.import", target=name, details={"mode": mode, "changes": changes})
        return changes
    before = _snapshot(name)
    try:
        with transaction.atomic():
            changes = _load(actor=actor, name=name, text=text, mode=mode)
            after = _snapshot(name)
            raise _PreviewDone
    except _PreviewDone:
        pass
    for change in changes:
        if change["action"] == "update":
            change["diff"] = _diff(_flatten(before.get(change["name"])), _flatten(after.get(change["name"])))
    return changes


def _load(*, actor: Actor, name: str, text: str | bytes, mode: str) -> list[dict[str, Any]]:
    if name == "users":
        records = user_budget_records_from_collection(collection_read_yaml(text, key="users"))
        return user_collection_load(actor=actor, records=records, clean=mode == "clean", overwrite=mode == "overwrite")
    entries = collection_read_yaml(text, key="datasets")
    datasets = dataset_records_from_collection(entries, base_dir=Path(settings.LOMAS_DATA_DIR))
    return dataset_collection_load(
        actor=actor,
        records=datasets,
        clean=mode == "clean",
        overwrite_datasets=mode == "overwrite",
        overwrite_metadata=mode == "overwrite",
    )


def _snapshot(name: str) -> dict[str, Any]:
    """Each entry of the collection as the preview compares it, by name."""
    if name == "users":
        return {user["id"]["name"]: user for user in collection_get(name="users")}
    return {
        dataset.name: {"dataset_access": dataset_to_wire(dataset)["dataset_access"], "metadata": dataset.metadata}
        for dataset in dataset_list()
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path; list items named by `name` or `dataset_name` are keyed by it."""
    if isinstance(value, dict):
        return {path: leaf for key, item in value.items() for path, leaf in _flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        keys = [item.get("name", item.get("dataset_name")) for item in value]
        if all(isinstance(key, str) for key in keys) and len(set(keys)) == len(keys):
            return {
                path: leaf
                for key, item in zip(keys, value, strict=True)
                for path, leaf in _flatten(_without_name(item), f"{prefix}{key}.").items()
            }
    return {prefix.rstrip("."): value} if prefix else {}


def _without_name(item: dict[str, Any]) -> dict[str, Any]:
    return {field: value for field, value in item.items() if field not in ("name", "dataset_name")}


def _diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"field": path, "old": _preview_text(old, path), "new": _preview_text(new, path)}
        for path in sorted(old.keys() | new.keys())
        if old.get(path, _PreviewDone) != new.get(path, _PreviewDone)
    ]


def _preview_text(values: dict[str, Any], path: str) -> str:
    if path not in values:
        return "(none)"
    text = json.dumps(values[path], ensure_ascii=False)
    return text if len(text) <= PREVIEW_VALUE_CHARS else f"{text[: PREVIEW_VALUE_CHARS - 1]}…"
