"""Data files uploaded from the admin pages: stored under LOMAS_DATA_DIR, then registered as PATH_DB datasets."""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.text import get_valid_filename

from accounts.services import Actor, audit_record
from datasets.collections import metadata_check
from datasets.models import Dataset
from datasets.services import dataset_add, dataset_change_source, dataset_replace_metadata
from lomas.errors import InvalidQuery

# File types an upload may have, and the folder of LOMAS_DATA_DIR uploads go to.
UPLOAD_SUFFIXES = (".csv", ".parquet")
UPLOAD_DIR = "uploads"


def upload_relative_path(*, dataset_name: str, file_name: str) -> str:
    """Where a dataset's uploaded file goes, relative to LOMAS_DATA_DIR: uploads/<safe dataset name>.<csv|parquet>."""
    suffix = Path(file_name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidQuery(f"Upload a .csv or .parquet file, not {Path(file_name).name!r}.")
    try:
        stem = get_valid_filename(dataset_name)
    except Exception as exc:
        raise InvalidQuery(f"The dataset name {dataset_name!r} cannot name a file.") from exc
    if stem.startswith("."):
        raise InvalidQuery(f"The dataset name {dataset_name!r} cannot name a file.")
    return f"{UPLOAD_DIR}/{stem}{suffix}"


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


@transaction.atomic
def dataset_upload(
    *, actor: Actor, dataset_name: str, upload: UploadedFile, metadata: dict[str, Any] | None = None
) -> tuple[str, Dataset | None]:
    """Store an uploaded CSV or parquet file and point the dataset at it, audited.

    An existing dataset becomes a PATH_DB dataset on the new file (its metadata replaced if
    given); a new dataset is registered if metadata is given. Without metadata a new
    dataset is not created yet (its metadata can then be drafted from the file): returns
    the file's path relative to LOMAS_DATA_DIR and the dataset, if any.
    """
    relative = upload_relative_path(dataset_name=dataset_name, file_name=upload.name or "")
    if metadata is not None:
        metadata = metadata_check(name=dataset_name, document=metadata)
    dataset = Dataset.objects.select_for_update().filter(name=dataset_name).first()
    size, sha256 = _store(upload, relative)
    audit_record(
        actor=actor,
        action="dataset.upload_file",
        target=dataset_name,
        details={"path": relative, "bytes": size, "sha256": sha256, "original_name": Path(upload.name or "").name},
    )
    source = {"access": Dataset.Access.PATH, "path": relative}
    if dataset is None:
        if metadata is None:
            return relative, None
        return relative, dataset_add(actor=actor, name=dataset_name, metadata=metadata, source=source)
    dataset = dataset_change_source(actor=actor, dataset=dataset, source=source)
    if metadata is not None and dataset.metadata != metadata:
        dataset = dataset_replace_metadata(actor=actor, dataset=dataset, metadata=metadata)
    return relative, dataset
