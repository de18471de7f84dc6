"""Dataset collections (spec §4.2, §4.5): YAML files listing datasets, their access and metadata files.

A collection entry names where the data is (`dataset_access`) and where its csvw-eo
JSON metadata is (`metadata_access`: a readable local path, or an S3 object read once at
registration). S3 keys are never stored: an S3 dataset names an entry of
LOMAS_S3_CREDENTIALS with `credentials_name`.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from datasets.metadata import InvalidMetadata, validate_metadata
from datasets.models import Dataset
from lomas.errors import InvalidQuery

# The one rule for dataset names (admin pages, admin API, commands, collection files): a letter or digit,
# then letters, digits, "_", "-" or "." (so a name is a safe URL path segment and file name), at most 255.
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
DATASET_NAME_RULE = (
    "a letter or digit, then letters, digits, '_', '-' or '.', at most 255 characters (for example PENGUIN_2024)"
)


def dataset_name_check(name: Any) -> str:
    """The name if it follows the dataset name rule, else InvalidQuery saying the rule."""
    if not isinstance(name, str) or not DATASET_NAME.fullmatch(name):
        raise InvalidQuery(f"Invalid dataset name {name!r}: a dataset name is {DATASET_NAME_RULE}.")
    return name


@dataclass(frozen=True)
class DatasetRecord:
    """One dataset of a collection: its Dataset field values and its validated metadata."""

    name: str
    source: dict[str, str]
    metadata: dict[str, Any]


def dataset_source_fields(*, name: str, access: Any) -> dict[str, str]:
    """The Dataset field values of a `dataset_access` block (PATH_DB or S3_DB)."""
    if not isinstance(access, dict):
        raise InvalidQuery(f"Dataset {name}: 'dataset_access' must be a mapping.")
    kind = access.get("database_type")
    if kind == Dataset.Access.PATH:
        path = access.get("path")
        if not isinstance(path, str) or not path:
            raise InvalidQuery(f"Dataset {name}: a PATH_DB dataset needs a 'path'.")
        if not path.startswith(("http://", "https://")) and ".." in PurePosixPath(path).parts:
            raise InvalidQuery(f"Dataset {name}: the path {path} leaves the data directory.")
        return {"access": Dataset.Access.PATH, "path": path}
    if kind == Dataset.Access.S3:
        if access.get("access_key_id") or access.get("secret_access_key"):
            raise InvalidQuery(
                f"Dataset {name}: S3 keys are not stored with datasets; name an entry of "
                f"LOMAS_S3_CREDENTIALS with 'credentials_name' instead."
            )
        fields = {
            "s3_bucket": access.get("bucket"),
            "s3_key": access.get("key"),
            "s3_endpoint_url": access.get("endpoint_url") or "",
            "s3_credentials_name": access.get("credentials_name"),
        }
        missing = [field for field in ("bucket", "key", "credentials_name") if not access.get(field)]
        if missing:
            raise InvalidQuery(f"Dataset {name}: an S3_DB dataset needs {', '.join(missing)}.")
        return {"access": Dataset.Access.S3, "path": "", **{k: str(v) for k, v in fields.items()}}
    if kind == Dataset.Access.SQL:
        return _sql_source_fields(name=name, access=access)
    raise InvalidQuery(f"Dataset {name}: unknown database_type {kind!r} (PATH_DB, S3_DB or SQL_DB).")


def _sql_source_fields(*, name: str, access: dict[str, Any]) -> dict[str, str]:
    """A SQL_DB block: a PostgreSQL [schema.]table and the LOMAS_SQL_CREDENTIALS entry of its database."""
    from datasets.connectors.postgres import table_identifier

    if any(field in access for field in ("url", "password", "connection_string")):
        raise InvalidQuery(
            f"Dataset {name}: database URLs are not stored with datasets; name an entry of "
            f"LOMAS_SQL_CREDENTIALS with 'credentials_name' instead."
        )
    missing = [field for field in ("credentials_name", "table") if not access.get(field)]
    if missing:
        raise InvalidQuery(f"Dataset {name}: a SQL_DB dataset needs {', '.join(missing)}.")
    try:
        table_identifier(str(access["table"]))
    except ValueError as exc:
        raise InvalidQuery(f"Dataset {name}: {exc}") from None
    return {
        "access": Dataset.Access.SQL,
        "path": "",
        "sql_credentials_name": str(access["credentials_name"]),
        "sql_table": str(access["table"]),
    }


def metadata_read_file(*, name: str, path: Path) -> dict[str, Any]:
    """A dataset's csvw-eo JSON metadata file, validated."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidQuery(f"Dataset {name}: cannot read the metadata file {path}: {exc.strerror}.") from exc
    except ValueError as exc:
        raise InvalidQuery(f"Dataset {name}: the metadata file {path} is not JSON: {exc}.") from exc
    return metadata_check(name=name, document=document)


def metadata_read(*, name: str, access: Any, base_dir: Path) -> dict[str, Any]:
    """A dataset's metadata from its `metadata_access` block: a local JSON file (relative to base_dir) or S3."""
    if not isinstance(access, dict) or access.get("database_type") not in (Dataset.Access.PATH, Dataset.Access.S3):
        raise InvalidQuery(f"Dataset {name}: 'metadata_access' must be a PATH_DB or S3_DB block.")
    if access["database_type"] == Dataset.Access.S3:
        return metadata_read_s3(name=name, access=access)
    path = access.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidQuery(f"Dataset {name}: 'metadata_access' needs a 'path'.")
    return metadata_read_file(name=name, path=base_dir / path)


def metadata_read_s3(*, name: str, access: dict[str, Any]) -> dict[str, Any]:
    """A dataset's csvw-eo JSON metadata read once from S3 (spec §4.2), validated; the keys are not kept.

    The keys are the block's `access_key_id` and `secret_access_key`, or else those of
    the LOMAS_S3_CREDENTIALS entry named by `credentials_name`.
    """
    from datasets.connectors.base import DatasetUnavailable
    from datasets.connectors.s3 import s3_credentials, s3_get_bytes

    missing = [field for field in ("bucket", "key") if not access.get(field)]
    if missing:
        raise InvalidQuery(f"Dataset {name}: S3_DB metadata needs {', '.join(missing)}.")
    try:
        if access.get("access_key_id") and access.get("secret_access_key"):
            credentials = {field: str(access[field]) for field in ("access_key_id", "secret_access_key")}
        else:
            credentials = s3_credentials(str(access.get("credentials_name") or ""))
        data = s3_get_bytes(
            endpoint_url=str(access.get("endpoint_url") or ""),
            bucket=str(access["bucket"]),
            key=str(access["key"]),
            access_key_id=credentials["access_key_id"],
            secret_access_key=credentials["secret_access_key"],
            region_name=credentials.get("region_name", ""),
        )
    except DatasetUnavailable as exc:
        raise InvalidQuery(f"Dataset {name}: cannot read the metadata: {exc.message}") from exc
    try:
        document = json.loads(data)
    except ValueError as exc:
        where = f"s3://{access['bucket']}/{access['key']}"
        raise InvalidQuery(f"Dataset {name}: the metadata object {where} is not JSON: {exc}.") from exc
    return metadata_check(name=name, document=document)


def metadata_check(*, name: str, document: Any) -> dict[str, Any]:
    """Validated csvw-eo metadata, or InvalidQuery naming the dataset and the field at fault."""
    try:
        return validate_metadata(document)
    except InvalidMetadata as exc:
        raise InvalidQuery(f"Dataset {name}: invalid metadata: {exc}") from exc


def dataset_records_from_collection(entries: list[Any], *, base_dir: Path) -> list[DatasetRecord]:
    """Parse the `datasets` list of a collection; relative metadata paths are under base_dir.

    An entry's csvw-eo document is its inline `metadata` if it has one (as exported), else
    read from its `metadata_access`.
    """
    records: list[DatasetRecord] = []
    for position, entry in enumerate(entries):
        name = entry.get("dataset_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidQuery(f"Invalid collection: datasets[{position}] needs a 'dataset_name'.")
        dataset_name_check(name)
        if any(record.name == name for record in records):
            raise InvalidQuery(f"Invalid collection: dataset {name} is listed twice.")
        source = dataset_source_fields(name=name, access=entry.get("dataset_access"))
        if "metadata" in entry:
            metadata = metadata_check(name=name, document=entry["metadata"])
        else:
            metadata = metadata_read(name=name, access=entry.get("metadata_access"), base_dir=base_dir)
        records.append(DatasetRecord(name=name, source=source, metadata=metadata))
    return records


def dataset_to_wire(dataset: Dataset, *, metadata_path: str | None = None) -> dict[str, Any]:
    """The DSInfo of a dataset (spec §4.2); metadata is served from the database unless a path is given."""
    if dataset.access == Dataset.Access.S3:
        access: dict[str, Any] = {
            "database_type": Dataset.Access.S3.value,
            "endpoint_url": dataset.s3_endpoint_url,
            "bucket": dataset.s3_bucket,
            "key": dataset.s3_key,
            "credentials_name": dataset.s3_credentials_name,
        }
    elif dataset.access == Dataset.Access.SQL:
        access = {
            "database_type": Dataset.Access.SQL.value,
            "credentials_name": dataset.sql_credentials_name,
            "table": dataset.sql_table,
        }
    else:
        access = {"database_type": Dataset.Access.PATH.value, "path": dataset.path}
    return {
        "dataset_name": dataset.name,
        "dataset_access": access,
        "metadata_access": {
            "database_type": Dataset.Access.PATH.value,
            "path": metadata_path or f"metadata/{dataset.name}.json",
        },
    }
