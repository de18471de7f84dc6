"""The connector for a dataset, with a per-process cache of loaded frames.

A worker reads each dataset file once: loaded frames are kept in a small LRU cache
keyed by (dataset pk, dataset version, resolved source), and every caller gets the
same frame object. Callers must not modify it; an adapter that needs to change the
data works on a copy.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
import polars as pl

from datasets.connectors.base import DataConnector, DatasetUnavailable
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector

if TYPE_CHECKING:
    from datasets.models import Dataset

FRAME_CACHE_SIZE = 8
Frame = TypeVar("Frame", pd.DataFrame, pl.DataFrame)


class FrameCache:
    """Least-recently-used frames shared by the threads of one process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._frames: OrderedDict[Hashable, pd.DataFrame | pl.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], Frame]) -> Frame:
        """The cached frame for `key`, loading it (outside the lock) on a miss."""
        with self._lock:
            if key in self._frames:
                self._frames.move_to_end(key)
                return self._frames[key]
        frame = load()
        with self._lock:
            frame = self._frames.setdefault(key, frame)  # a concurrent load that finished first wins
            self._frames.move_to_end(key)
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)
        return frame


FRAMES = FrameCache(FRAME_CACHE_SIZE)


class CachedConnector(DataConnector):
    """Another connector's frame, served from a FrameCache."""

    def __init__(self, source: DataConnector, *, key: Hashable, cache: FrameCache = FRAMES) -> None:
        self.source = source
        self.key = key
        self.cache = cache

    def get_pandas(self) -> pd.DataFrame:
        """The shared cached frame: do not modify it."""
        return self.cache.get_or_load(self.key, self.source.get_pandas)

    def get_polars(self) -> pl.LazyFrame:
        """A LazyFrame over the cached polars copy of the frame (converted once per process)."""
        return self.cache.get_or_load((*self.key, "polars"), lambda: pl.from_pandas(self.get_pandas())).lazy()


def get_connector(dataset: "Dataset") -> DataConnector:
    """The real data of a dataset; DatasetUnavailable (a 500) if it cannot be reached."""
    match dataset.access:
        case "PATH_DB":
            source = PathConnector(dataset.path, metadata=dataset.metadata)
        case "S3_DB":
            raise DatasetUnavailable("S3 datasets are not supported yet.")
        case _:
            raise DatasetUnavailable(f"Unknown dataset access type {dataset.access!r}.")
    return CachedConnector(source, key=(dataset.pk, dataset.version, source.source))


def get_dummy_connector(dataset: "Dataset", *, nb_rows: int, seed: int) -> DataConnector:
    """Dummy rows for a dataset, generated from its metadata (spec §5)."""
    return DummyConnector(dataset.metadata, nb_rows, seed)
