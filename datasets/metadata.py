"""csvw-eo table metadata: validation of uploaded documents and the forms derived from them.

Documents are stored in their csvw-eo JSON-LD form (camelCase, spec §4.3) and parsed
with csvw-eo's own models; the wire form is the snake_case pydantic dump that
lomas-client 0.5.1 validates with `TableMetadata.model_validate`.
"""

import json
from typing import Any

import pandas as pd
from csvw_eo.datatypes import XSD_GROUP_MAP, DataTypesGroups, to_pandas_dtype
from csvw_eo.metadata_structure import ColumnMetadata, TableMetadata
from csvw_eo.validate_metadata import validate_metadata as csvw_validate
from pydantic import ValidationError

# Datatype groups whose dummy values are drawn between `minimum` and `maximum` (spec §5).
_BOUNDED_GROUPS = {DataTypesGroups.INTEGER, DataTypesGroups.FLOAT, DataTypesGroups.DATETIME, DataTypesGroups.DURATION}


class InvalidMetadata(ValueError):
    """A metadata document that cannot describe a dataset; the message names the field at fault."""


def validate_metadata(document: dict[str, Any]) -> dict[str, Any]:
    """Check a csvw-eo JSON-LD table document and return the plain-JSON copy to store.

    Beyond csvw-eo's parser this requires a positive `maxContributions`, a non-empty
    `tableSchema.columns` with unique names, bounds on numeric, date and duration
    columns, and column groups that name known columns.
    """
    if not isinstance(document, dict):
        raise InvalidMetadata("Metadata must be a JSON object (a csvw-eo Table).")
    try:
        stored = json.loads(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidMetadata(f"Metadata must be plain JSON: {exc}") from exc
    if stored.get("@type", "Table") != "Table":
        raise InvalidMetadata(f"'@type' must be 'Table', not {stored['@type']!r}.")
    _check_table_counts(stored)
    names = _check_columns(stored.get("tableSchema"))
    _check_column_groups(stored.get("additionalInformation"), names)
    try:
        csvw_validate(stored)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidMetadata(f"Invalid csvw-eo metadata: {_describe(exc)}") from exc
    return stored


def metadata_to_wire(document: dict[str, Any]) -> dict[str, Any]:
    """The snake_case `TableMetadata` dump that `/get_dataset_metadata` returns (spec §4.3)."""
    return TableMetadata.from_dict(document).model_dump(mode="json")


def column_names(document: dict[str, Any]) -> list[str]:
    """Column names in metadata order."""
    return [column["name"] for column in document["tableSchema"]["columns"]]


def column_dtypes(document: dict[str, Any]) -> dict[str, str]:
    """Pandas dtype of each column, in metadata order (Int64, float64, boolean, datetime64[ns], ..., string)."""
    return {column["name"]: to_pandas_dtype(column["datatype"]) for column in document["tableSchema"]["columns"]}


def population_size(document: dict[str, Any]) -> int | None:
    """The largest number of rows the dataset may hold, by its metadata (None if it says nothing)."""
    return document.get("maxLength") or document.get("publicLength")


def _check_table_counts(document: dict[str, Any]) -> None:
    if "maxContributions" not in document:
        raise InvalidMetadata("Table field 'maxContributions' is required (most rows one privacy unit may hold).")
    for field in ("maxContributions", "maxLength", "publicLength"):
        value = document.get(field)
        if field in document and not (_is_int(value) and value > 0):
            raise InvalidMetadata(f"Table field '{field}' must be a positive integer, not {value!r}.")


def _check_columns(schema: Any) -> list[str]:
    if not isinstance(schema, dict) or not isinstance(schema.get("columns"), list) or not schema["columns"]:
        raise InvalidMetadata("'tableSchema.columns' must be a non-empty list of columns.")
    names: list[str] = []
    for position, column in enumerate(schema["columns"]):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str) or not column["name"]:
            raise InvalidMetadata(f"Column {position} needs a non-empty string 'name'.")
        name = column["name"]
        if name in names:
            raise InvalidMetadata(f"Duplicate column name '{name}'.")
        names.append(name)
        if "datatype" not in column:
            raise InvalidMetadata(f"Column '{name}': field 'datatype' is required.")
        try:
            parsed = ColumnMetadata.from_dict(column)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidMetadata(f"Column '{name}': {_describe(exc)}") from exc
        _check_column_fields(parsed, column)
    return names


def _check_column_fields(parsed: ColumnMetadata, column: dict[str, Any]) -> None:
    name = parsed.name
    share = column.get("nullableProportion")
    if share is not None and not (_is_number(share) and 0 <= share <= 1):
        raise InvalidMetadata(f"Column '{name}': 'nullableProportion' must be a number in [0, 1], not {share!r}.")
    group = XSD_GROUP_MAP[parsed.datatype]
    if group not in _BOUNDED_GROUPS:
        return
    missing = [field for field in ("minimum", "maximum") if column.get(field) is None]
    if missing:
        raise InvalidMetadata(f"Column '{name}': {' and '.join(missing)} must be set for datatype {parsed.datatype}.")
    lower, upper = column["minimum"], column["maximum"]
    if group == DataTypesGroups.DATETIME:
        if not (isinstance(lower, str) and isinstance(upper, str)):
            raise InvalidMetadata(f"Column '{name}': minimum and maximum must be ISO date or datetime strings.")
        try:
            ordered = pd.Timestamp(lower) <= pd.Timestamp(upper)
        except (TypeError, ValueError) as exc:
            raise InvalidMetadata(f"Column '{name}': minimum and maximum must be comparable ISO datetimes.") from exc
    elif _is_number(lower) and _is_number(upper):
        ordered = lower <= upper
    else:
        raise InvalidMetadata(f"Column '{name}': minimum and maximum must be numbers.")
    if not ordered:
        raise InvalidMetadata(f"Column '{name}': minimum {lower!r} exceeds maximum {upper!r}.")


def _check_column_groups(groups: Any, names: list[str]) -> None:
    if groups is None:
        return
    if not isinstance(groups, list):
        raise InvalidMetadata("'additionalInformation' must be a list of column groups.")
    for position, group in enumerate(groups):
        members = group.get("columnsInGroup") if isinstance(group, dict) else None
        if not isinstance(members, list) or not members:
            raise InvalidMetadata(f"Column group {position} needs a non-empty 'columnsInGroup' list.")
        unknown = [member for member in members if member not in names]
        if unknown:
            raise InvalidMetadata(f"Column group {position} names unknown columns: {unknown}.")


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors())
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
