"""The connector for a dataset: its rows from the machine's columnar copy (see columnar.ColumnarStore).

Every connector implements base.DataConnector: `get_pandas(columns=None)` (the rows, or only
the named columns), `get_polars()` (a LazyFrame), `derived(name, build)` (an object made from
the rows, kept per process), `prepare()` (make the rows quick to read), `shared_file(name,
build)` (a file made from the rows, kept once per machine; None where the source keeps no
machine copy) and `fingerprint()` (a token that changes with the stored data).

get_connector wraps the source (a local file or URL, an S3 object) in a CachedConnector: the
rows are converted once per dataset version and machine into an Arrow file that every process
memory-maps. A version is the dataset's version, a digest of its metadata, its source and the
source's own fingerprint (file stat, S3 ETag, URL validators), checked once per connector, so a
changed file, object or metadata gets a new copy. Callers must not modify the frames they get.
"""

import hashlib
import json
import re
from collections.abc import Callable, Hashable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import polars as pl
import pyarrow as pa

from datasets.connectors.base import DataConnector, DatasetUnavailable, Derived
from datasets.connectors.cache import FrameCache, frame_bytes
from datasets.connectors.columnar import ColumnarStore, version_digest
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector

if TYPE_CHECKING:
    from datasets.connectors.postgres import PostgresConnector
    from datasets.models import Dataset

FRAMES = FrameCache()
STORE = ColumnarStore()


class CachedConnector(DataConnector):
    """Another connector's rows, served from the machine's columnar copy of their version.

    `key` names the dataset in the store's file names (letters, digits, "_" and "." only);
    `version` is anything that changes with what the source should give (the dataset's version
    and metadata digest); with the source and its fingerprint, read once per connector, it names
    the copy. Objects made from the rows (`derived`) are kept per process in `cache`.
    """

    def __init__(
        self,
        source: DataConnector,
        *,
        key: str,
        version: Hashable = None,
        label: str = "",
        cache: FrameCache = FRAMES,
        store: ColumnarStore = STORE,
    ) -> None:
        self.source_connector = source
        self.source = source.source
        self.key = key
        self.version = version
        self.label = label or key
        self.cache = cache
        self.store = store

    @cached_property
    def _fingerprint(self) -> Hashable:
        return self.version, self.source_connector.source, self.source_connector.fingerprint()

    def fingerprint(self) -> Hashable:
        return self._fingerprint

    @cached_property
    def _digest(self) -> str:
        return version_digest(self._fingerprint)

    @cached_property
    def rows_file(self) -> Path:
        """The Arrow file of this version on this machine, converted from the source if it has none yet."""
        return self.store.rows(
            key=self.key, digest=self._digest, label=self.label, load=self.source_connector.get_pandas
        )

    def prepare(self) -> None:
        """Convert the source into this machine's columnar copy, unless it has one already."""
        _ = self.rows_file

    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows (or the named columns) read from the memory-mapped copy: a new frame on each call."""
        with pa.memory_map(str(self.rows_file)) as source:
            table = pa.ipc.open_file(source).read_all()
        return (table if columns is None else table.select(list(columns))).to_pandas()

    def get_polars(self) -> pl.LazyFrame:
        """A lazy scan of the memory-mapped copy: a plan reads only the columns and rows it needs."""
        return pl.scan_ipc(self.rows_file, memory_map=True)

    def shared_file(self, name: str, build: Callable[[Path], None]) -> Path:
        """The file `name` of this version, built once per machine beside the columnar copy."""
        self.prepare()  # a new version removes the files of the old one first
        return self.store.file(key=self.key, digest=self._digest, name=name, label=self.label, build=build)

    def sql_table(self) -> "PostgresConnector | None":
        return self.source_connector.sql_table()

    def derived(self, name: str, build: Callable[[pd.DataFrame], Derived]) -> Derived:
        """`build(frame)`, kept in this process's cache and counted as large as the frame."""
        frame = self.get_pandas()
        return self.cache.get_or_load(
            (self.key, "derived", name),
            lambda: build(frame),
            fingerprint=self._fingerprint,
            label=self.label,
            size=lambda _: frame_bytes(frame),
        )


def metadata_digest(metadata: dict[str, Any]) -> str:
    """A digest of a metadata document that changes with any of its values."""
    return hashlib.sha256(json.dumps(metadata, sort_keys=True, default=str).encode()).hexdigest()


def get_connector(dataset: "Dataset") -> DataConnector:
    """The real data of a dataset; DatasetUnavailable (a 500) if it cannot be reached.

    Only local checks run here (the file exists, S3 credentials are configured), so
    web processes can call it at submission; the source is contacted on first read.
    """
    match dataset.access:
        case "PATH_DB":
            source: DataConnector = PathConnector(dataset.path, metadata=dataset.metadata)
        case "S3_DB":
            from datasets.connectors.s3 import S3Connector

            source = S3Connector(
                endpoint_url=dataset.s3_endpoint_url,
                bucket=dataset.s3_bucket,
                key=dataset.s3_key,
                credentials_name=dataset.s3_credentials_name,
                metadata=dataset.metadata,
            )
        case "SQL_DB":
            from datasets.connectors.postgres import PostgresConnector

            source = PostgresConnector(
                table=dataset.sql_table, credentials_name=dataset.sql_credentials_name, metadata=dataset.metadata
            )
        case _:
            raise DatasetUnavailable(f"Unknown dataset access type {dataset.access!r}.")
    version = (dataset.version, metadata_digest(dataset.metadata))
    return CachedConnector(source, key=dataset_key(dataset), version=version, label=dataset.name)


def dataset_key(dataset: "Dataset") -> str:
    """The dataset's part of its columnar file names: its id and its name made safe for a file name."""
    return f"{dataset.pk}.{re.sub(r'[^A-Za-z0-9_]', '_', dataset.name)}"


def get_dummy_connector(dataset: "Dataset", *, nb_rows: int, seed: int) -> DataConnector:
    """Dummy rows for a dataset, generated from its metadata (spec §5)."""
    return DummyConnector(dataset.metadata, nb_rows, seed)
