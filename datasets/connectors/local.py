"""Datasets stored as a CSV or parquet file: a local path or an http(s) URL."""

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from django.conf import settings

from datasets.connectors.base import DataConnector, DatasetUnavailable
from datasets.metadata import column_dtypes

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_NUMERIC = frozenset({"Int64", "float64"})
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


class PathConnector(DataConnector):
    """Reads a CSV or parquet file, typed and ordered by the metadata's columns.

    Integers become nullable Int64, floats float64, booleans boolean, strings string,
    dates and datetimes datetime64[ns] (timezones converted to naive UTC) and durations
    timedelta64[ns]; columns absent from the metadata are dropped. Relative paths are
    resolved under settings.LOMAS_DATA_DIR. Errors never quote the file's values.
    """

    def __init__(self, path: str, *, metadata: dict[str, Any]) -> None:
        self.is_url = urlparse(path).scheme in {"http", "https"}
        self.source = path if self.is_url else str(_local_path(path))
        self.metadata = metadata
        name = (urlparse(path).path if self.is_url else path).lower()
        if name.endswith(_PARQUET_SUFFIXES):
            self.format = "parquet"
        elif name.endswith(_CSV_SUFFIXES):
            self.format = "csv"
        else:
            raise DatasetUnavailable(f"Unsupported dataset file type for {path} (expected .csv or .parquet).")
        if not self.is_url and not Path(self.source).is_file():
            raise DatasetUnavailable(f"Dataset file {self.source} does not exist.")

    def get_pandas(self) -> pd.DataFrame:
        """Read the whole file (once per call: caching is get_connector's job)."""
        dtypes = column_dtypes(self.metadata)
        try:
            frame = self._read(dtypes)
        except (OSError, ValueError, TypeError) as exc:
            raise DatasetUnavailable(f"Cannot read dataset file {self.source} ({type(exc).__name__}).") from exc
        missing = [name for name in dtypes if name not in frame.columns]
        if missing:
            raise DatasetUnavailable(f"Dataset file {self.source} lacks the metadata's columns {missing}.")
        return pd.DataFrame({name: _typed(frame[name], name, dtype) for name, dtype in dtypes.items()})

    def _read(self, dtypes: dict[str, str]) -> pd.DataFrame:
        if self.format == "parquet":
            return pd.read_parquet(self.source)
        # Numbers are parsed natively (far faster than a nullable dtype at read time), the rest as text;
        # _typed converts both.
        text = {name: "string" for name, dtype in dtypes.items() if dtype not in _NUMERIC}
        return pd.read_csv(self.source, usecols=lambda name: name in dtypes, dtype=text)


def _local_path(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else Path(settings.LOMAS_DATA_DIR) / candidate


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
