"""Metadata drafted from a dataset's own rows with csvw-eo's generator (without server paths).

A draft holds bounds, categories and counts taken from the private data: an admin must
review it before researchers can read it, so drafts are only shown, never stored here.
"""

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from csvw_eo.make_metadata_from_data import make_metadata_from_data
from django.conf import settings

from lomas.errors import InvalidQuery

DRAFT_LABEL = "Derived from private data — review before publishing to researchers"


def data_file_path(relative: str) -> Path:
    """A local data file under LOMAS_DATA_DIR (URLs, S3 objects and paths leaving the directory are refused)."""
    if "://" in relative or ".." in PurePosixPath(relative).parts:
        raise InvalidQuery(f"Metadata can only be drafted from a file in the data directory, not {relative}.")
    path = Path(settings.LOMAS_DATA_DIR) / relative
    if not path.is_file():
        raise InvalidQuery(f"The data file {relative} does not exist.")
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise InvalidQuery(f"Metadata can only be drafted from a .csv or .parquet file, not {relative}.")
    return path


def data_file_columns(relative: str) -> list[str]:
    """The column names of a data file, read from its header only."""
    path = data_file_path(relative)
    try:
        if path.suffix.lower() == ".parquet":
            return list(pq.read_schema(path).names)
        return [str(column) for column in pd.read_csv(path, nrows=0).columns]
    except (OSError, ValueError) as exc:
        raise InvalidQuery(f"Cannot read the data file {relative} ({type(exc).__name__}).") from exc


def metadata_draft(*, relative: str, privacy_unit: str) -> dict[str, Any]:
    """csvw-eo metadata generated from the file's rows, with `privacy_unit` as the privacy unit column."""
    path = data_file_path(relative)
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidQuery(f"Cannot read the data file {relative} ({type(exc).__name__}).") from exc
    if privacy_unit not in frame.columns:
        raise InvalidQuery(f"The data file has no column {privacy_unit!r}.")
    try:
        draft = make_metadata_from_data(frame, privacy_unit=privacy_unit)
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidQuery(f"csvw-eo could not draft metadata from {relative}: {exc}") from exc
    return {**draft, "@context": _public_context(draft.get("@context", []))}


def _public_context(context: list[str] | str) -> list[str]:
    """The JSON-LD context with csvw-eo's local context file named by its file name, not its server path."""
    entries = context if isinstance(context, list) else [context]
    return [entry if "://" in entry else PurePosixPath(entry).name for entry in entries]
