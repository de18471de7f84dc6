"""Data files uploaded from the admin pages: stored under LOMAS_DATA_DIR, checked against the metadata, then
registered as PATH_DB datasets or as the new version of one."""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from csvw_eo.datatypes import XSD_GROUP_MAP, DataTypesGroups
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.text import get_valid_filename

from accounts.services import Actor, audit_record
from datasets.collections import dataset_name_check, metadata_check
from datasets.connectors.base import DatasetUnavailable
from datasets.connectors.reading import read_typed
from datasets.models import Dataset
from datasets.services import dataset_add, dataset_change_source
from lomas.errors import InvalidQuery

# File types an upload may have, and the folder of LOMAS_DATA_DIR uploads go to.
UPLOAD_SUFFIXES = (".csv", ".parquet")
UPLOAD_DIR = "uploads"


def upload_relative_path(*, dataset_name: str, file_name: str, version: int | None = None) -> str:
    """Where a dataset's uploaded file goes, relative to LOMAS_DATA_DIR: uploads/<safe dataset name>.<csv|parquet>,
    or uploads/<safe dataset name>.v<version>.<csv|parquet> for a new version (earlier files stay)."""
    suffix = Path(file_name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidQuery(f"Upload a .csv or .parquet file, not {Path(file_name).name!r}.")
    try:
        stem = get_valid_filename(dataset_name)
    except Exception as exc:
        raise InvalidQuery(f"The dataset name {dataset_name!r} cannot name a file.") from exc
    if stem.startswith("."):
        raise InvalidQuery(f"The dataset name {dataset_name!r} cannot name a file.")
    return f"{UPLOAD_DIR}/{stem}{'' if version is None else f'.v{version}'}{suffix}"


def _store(upload: UploadedFile, relative: str) -> tuple[int, str]:
    """Write the upload to LOMAS_DATA_DIR/relative, replacing any previous file at once; (bytes, sha256)."""
    target = Path(settings.LOMAS_DATA_DIR) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in upload.chunks():
                size += len(chunk)
                if size > settings.LOMAS_ADMIN_UPLOAD_MAX_BYTES:
                    raise InvalidQuery(
                        f"The file is larger than the upload limit of {settings.LOMAS_ADMIN_UPLOAD_MAX_BYTES} bytes."
                    )
                digest.update(chunk)
                out.write(chunk)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def data_file_check(*, relative: str, metadata: dict[str, Any]) -> int:
    """Check a data file against the metadata and return its number of rows.

    Every column of the metadata is present and castable to its type, bounded columns stay
    within minimum and maximum, columns with known keys (`keyValues`) hold only those, and a
    column that may not be null (`required`, or a null proportion of 0) holds no nulls.
    Refusals name the column and how many rows are at fault, never a value of the data.
    """
    try:
        frame = read_typed(Path(settings.LOMAS_DATA_DIR) / relative, name=relative, metadata=metadata, label=relative)
    except DatasetUnavailable as exc:
        raise InvalidQuery(f"The file does not fit the metadata: {exc.message}") from exc
    problems = []
    for column in metadata["tableSchema"]["columns"]:
        values = frame[column["name"]]
        problem = _column_problem(values, column)
        if problem:
            problems.append(f"column {column['name']}: {problem}")
    if problems:
        raise InvalidQuery(f"The file does not fit the metadata: {'; '.join(problems)}.")
    return len(frame)


def _column_problem(values: pd.Series, column: dict[str, Any]) -> str | None:
    present = values.dropna()
    if (column.get("required") or column.get("nullableProportion") == 0) and len(present) < len(values):
        return f"{len(values) - len(present)} null row(s) where the metadata allows none"
    group = XSD_GROUP_MAP.get(column["datatype"])
    if column.get("minimum") is not None and column.get("maximum") is not None:
        lower, upper = column["minimum"], column["maximum"]
        if group == DataTypesGroups.DATETIME:
            lower, upper = pd.Timestamp(lower).tz_localize(None), pd.Timestamp(upper).tz_localize(None)
        outside = int(((present < lower) | (present > upper)).sum())
        if outside:
            return f"{outside} row(s) outside [{column['minimum']}, {column['maximum']}]"
    keys = column.get("keyValues")
    if keys:
        unknown = int((~present.astype(str).isin([str(key) for key in keys])).sum())
        if unknown:
            return f"{unknown} row(s) not among its {len(keys)} categories"
    return None


@transaction.atomic
def dataset_upload(
    *, actor: Actor, dataset_name: str, upload: UploadedFile, metadata: dict[str, Any] | None = None
) -> tuple[str, Dataset | None]:
    """Store the CSV or parquet file of a new dataset, audited.

    With metadata the file is checked against it and the dataset registered; without, the
    dataset is not created yet (its metadata can then be drafted from the file). An existing
    name is refused: replacing a dataset's data is its explicit new version
    (dataset_upload_new_version). Returns the file's path relative to LOMAS_DATA_DIR and the
    dataset, if any.
    """
    dataset_name_check(dataset_name)
    if Dataset.objects.filter(name=dataset_name).exists():
        raise InvalidQuery(
            f"Dataset {dataset_name} already exists: replace its data with the 'Upload a new version' button "
            f"on its page."
        )
    relative = upload_relative_path(dataset_name=dataset_name, file_name=upload.name or "")
    if metadata is not None:
        metadata = metadata_check(name=dataset_name, document=metadata)
    size, sha256 = _store(upload, relative)
    try:
        rows = None if metadata is None else data_file_check(relative=relative, metadata=metadata)
    except InvalidQuery:
        (Path(settings.LOMAS_DATA_DIR) / relative).unlink(missing_ok=True)
        raise
    audit_record(
        actor=actor,
        action="dataset.upload_file",
        target=dataset_name,
        details={
            "path": relative,
            "bytes": size,
            "rows": rows,
            "sha256": sha256,
            "original_name": Path(upload.name or "").name,
        },
    )
    if metadata is None:
        return relative, None
    source = {"access": Dataset.Access.PATH, "path": relative}
    return relative, dataset_add(actor=actor, name=dataset_name, metadata=metadata, source=source)


@transaction.atomic
def dataset_upload_new_version(*, actor: Actor, dataset: Dataset, upload: UploadedFile) -> Dataset:
    """Make an uploaded file the data of an existing dataset, once it fits the dataset's metadata; audited.

    The file is stored beside the earlier ones (uploads/<name>.v<version>.<suffix>); budgets,
    their ledgers and archived queries are untouched, so what was spent stays spent.
    """
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    relative = upload_relative_path(dataset_name=dataset.name, file_name=upload.name or "", version=dataset.version + 1)
    size, sha256 = _store(upload, relative)
    try:
        rows = data_file_check(relative=relative, metadata=dataset.metadata)
    except InvalidQuery:
        (Path(settings.LOMAS_DATA_DIR) / relative).unlink(missing_ok=True)
        raise
    old_path = dataset.path
    dataset = dataset_change_source(
        actor=actor, dataset=dataset, source={"access": Dataset.Access.PATH, "path": relative}
    )
    audit_record(
        actor=actor,
        action="dataset.new_version",
        target=dataset.name,
        details={
            "version": dataset.version,
            "old_path": old_path,
            "path": relative,
            "bytes": size,
            "rows": rows,
            "sha256": sha256,
            "original_name": Path(upload.name or "").name,
        },
    )
    return dataset
