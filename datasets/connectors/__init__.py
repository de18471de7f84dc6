"""The connector for a dataset, with a per-process cache of loaded frames (see cache.FrameCache).

Cached frames are keyed by dataset and checked against a fingerprint made of the
dataset's version, a digest of its metadata, its source and the source's own
fingerprint (file stat, S3 ETag, URL validators), so a changed file, object or
metadata is read again. Every caller gets the same frame object: callers must not
modify it; an adapter that needs to change the data works on a copy.
"""

import hashlib
import json
from collections.abc import Callable, Hashable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd
import polars as pl

from datasets.connectors.base import DataConnector, DatasetUnavailable, Derived
from datasets.connectors.cache import FrameCache, frame_bytes
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector

if TYPE_CHECKING:
    from datasets.connectors.postgres import PostgresConnector
    from datasets.models import Dataset

FRAMES = FrameCache()


class CachedConnector(DataConnector):
    """Another connector's frame, served from a FrameCache.

    `version` is anything that changes with what the source should give (the dataset's
    version and metadata digest); with the source and its fingerprint, checked once per
    connector, it decides whether a cached frame is still current.
    """

    def __init__(
        self,
        source: DataConnector,
        *,
        key: Hashable,
        version: Hashable = None,
        label: str = "",
        cache: FrameCache = FRAMES,
    ) -> None:
        self.source_connector = source
        self.source = source.source
        self.key = key
        self.version = version
        self.label = label or str(key)
        self.cache = cache

    @cached_property
    def _fingerprint(self) -> Hashable:
        return self.version, self.source_connector.source, self.source_connector.fingerprint()

    def fingerprint(self) -> Hashable:
        return self._fingerprint

    def get_pandas(self) -> pd.DataFrame:
        """The shared cached frame: do not modify it."""
        return self.cache.get_or_load(
            (self.key, "pandas"), self.source_connector.get_pandas, fingerprint=self._fingerprint, label=self.label
        )

    def get_polars(self) -> pl.LazyFrame:
        """A LazyFrame over the cached polars copy of the frame (converted once per process)."""
        frame = self.cache.get_or_load(
            (self.key, "polars"),
            lambda: pl.from_pandas(self.get_pandas()),
            fingerprint=self._fingerprint,
            label=self.label,
        )
        return frame.lazy()

    def sql_table(self) -> "PostgresConnector | None":
        return self.source_connector.sql_table()

    def derived(self, name: str, build: Callable[[pd.DataFrame], Derived]) -> Derived:
        """`build(frame)`, kept in the cache beside the frame and counted as large as it."""
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
    return CachedConnector(source, key=("dataset", dataset.pk), version=version, label=dataset.name)


def get_dummy_connector(dataset: "Dataset", *, nb_rows: int, seed: int) -> DataConnector:
    """Dummy rows for a dataset, generated from its metadata (spec §5)."""
    return DummyConnector(dataset.metadata, nb_rows, seed)
