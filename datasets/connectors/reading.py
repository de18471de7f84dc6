"""CSV and parquet bytes or files as pandas frames typed and ordered by the csvw-eo metadata.

Integers become nullable Int64, floats float64, booleans boolean, strings string,
dates and datetimes datetime64[ns] (timezones converted to naive UTC) and durations
timedelta64[ns]; columns absent from the metadata are dropped. Errors name the source
and the column, never a value of the data.
"""

from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd

from datasets.connectors.base import DatasetUnavailable
from datasets.metadata import column_dtypes

_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}
_CSV_SUFFIXES = (".csv", *(f".csv{suffix}" for suffix in _COMPRESSIONS))
_PARQUET_SUFFIXES = (".parquet", ".pq")
_NUMERIC = frozenset({"Int64", "float64"})
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def file_format(name: str) -> str:
    """ "csv" or "parquet", from a file name, URL path or object key; DatasetUnavailable otherwise."""
    lowered = name.lower()
    if lowered.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if lowered.endswith(_CSV_SUFFIXES):
        return "csv"
    raise DatasetUnavailable(f"Unsupported dataset file type for {name} (expected .csv or .parquet).")


def read_typed(data: Path | bytes, *, name: str, metadata: dict[str, Any], label: str) -> pd.DataFrame:
    """The rows of a local file or of downloaded bytes named `name`, typed by the metadata.

    `label` says where the data came from in error messages (a path, URL or s3:// address).
    """
    dtypes = column_dtypes(metadata)
    try:
        frame = _read(data, name=name, dtypes=dtypes)
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetUnavailable(f"Cannot read dataset file {label} ({type(exc).__name__}).") from exc
    missing = [column for column in dtypes if column not in frame.columns]
    if missing:
        raise DatasetUnavailable(f"Dataset file {label} lacks the metadata's columns {missing}.")
    return pd.DataFrame({column: _typed(frame[column], column, dtype) for column, dtype in dtypes.items()})


def _read(data: Path | bytes, *, name: str, dtypes: dict[str, str]) -> pd.DataFrame:
    source = BytesIO(data) if isinstance(data, bytes) else data
    if file_format(name) == "parquet":
        return pd.read_parquet(source)
    # Numbers are parsed natively (far faster than a nullable dtype at read time), the rest as text;
    # _typed converts both.
    text = {column: "string" for column, dtype in dtypes.items() if dtype not in _NUMERIC}
    compression = _COMPRESSIONS.get(Path(name.lower()).suffix)
    return pd.read_csv(source, usecols=lambda column: column in dtypes, dtype=text, compression=compression)


def _typed(series: pd.Series, name: str, dtype: str) -> pd.Series:
    """The column as `dtype`; DatasetUnavailable (naming the column, not its values) if it does not fit."""
    try:
        if dtype == "boolean":
            return _booleans(series)
        if dtype == "datetime64[ns]":
            parsed = pd.to_datetime(series, format="ISO8601", utc=True)
            return parsed.dt.tz_localize(None).astype(dtype)
        if dtype == "timedelta64[ns]":
            return pd.to_timedelta(series).astype(dtype)
        if dtype in _NUMERIC and not pd.api.types.is_numeric_dtype(series):
            series = pd.to_numeric(series)
        return series.astype(dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DatasetUnavailable(f"Column {name} cannot be read as {dtype}.") from exc


def _booleans(series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    words = series.astype("string").str.strip().str.lower()
    result = pd.Series(pd.NA, index=series.index, dtype="boolean")
    result[words.isin(_TRUE)] = True
    result[words.isin(_FALSE)] = False
    if (result.isna() & series.notna()).any():
        raise ValueError("values that are not booleans")
    return result
