"""Seeded dummy datasets generated from metadata alone (spec §5)."""

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from csvw_eo.make_dummy_from_metadata import make_dummy_from_metadata

from datasets.frames import dataframe_to_tight_json


def make_dummy_frame(metadata: dict[str, Any], *, nb_rows: int, seed: int) -> pd.DataFrame:
    """A dummy frame with the metadata's columns and dtypes; the same seed gives the same frame."""
    with warnings.catch_warnings():
        # csvw-eo writes nulls through a column view; the frame it returns is correct.
        warnings.simplefilter("ignore", pd.errors.SettingWithCopyWarning)
        return make_dummy_from_metadata(metadata, nb_rows=nb_rows, seed=seed)


def frame_to_wire(df: pd.DataFrame) -> dict[str, Any]:
    """DummyDsResponse body: column dtypes and the frame as a JSON-ready tight dict."""
    return {
        "dtypes": {str(name): str(dtype) for name, dtype in df.dtypes.items()},
        "dummy_df": dataframe_to_tight_json(df),
    }


def metadata_for_rows(metadata: dict[str, Any], *, nb_rows: int) -> dict[str, Any]:
    """The metadata of a dataset like this one with `nb_rows` rows: table and per-column lengths scaled."""
    scaled = copy.deepcopy(metadata)
    factor = nb_rows / int(metadata.get("maxLength") or metadata.get("publicLength") or nb_rows)
    for field in ("maxLength", "publicLength"):
        if field in scaled:
            scaled[field] = nb_rows
    for column in scaled.get("tableSchema", {}).get("columns", []):
        if "maxLength" in column:
            column["maxLength"] = math.ceil(column["maxLength"] * factor)
    return scaled


def write_dummy_parquet(
    metadata: dict[str, Any], path: Path, *, nb_rows: int, seed: int, chunk_rows: int = 1_000_000
) -> None:
    """Write `nb_rows` (at least 1) dummy rows to a parquet file, in chunks (chunk i has seed `seed + i`), so
    memory stays that of one chunk; the same arguments give the same file. Written under a temporary name,
    then renamed."""
    frames = (
        make_dummy_frame(metadata, nb_rows=min(chunk_rows, nb_rows - start), seed=seed + index)
        for index, start in enumerate(range(0, nb_rows, chunk_rows))
    )
    tables = (pa.Table.from_pandas(frame, preserve_index=False) for frame in frames)
    first = next(tables)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with pq.ParquetWriter(partial, first.schema) as writer:
            writer.write_table(first)
            for table in tables:
                writer.write_table(table.cast(first.schema))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
