"""Loaded dataset frames kept in each process within a memory budget.

A worker reads a dataset once and serves later queries from memory. Each entry is
kept with the fingerprint it was loaded under (dataset version, metadata digest,
source and the source's own fingerprint: file stat, S3 ETag, URL validators); a lookup
under another fingerprint drops the entry and loads again. When the frames exceed
settings.LOMAS_DATASET_CACHE_BYTES the least recently used ones are evicted. Every
caller gets the same frame object: callers must not modify it.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import polars as pl
from django.conf import settings

from lomas import tracing
from lomas.metrics import observe_dataset_load, record_dataset_cache

Cached = TypeVar("Cached")


def frame_bytes(frame: pd.DataFrame | pl.DataFrame) -> int:
    """Memory held by a frame, strings included."""
    if isinstance(frame, pl.DataFrame):
        return int(frame.estimated_size())
    return int(frame.memory_usage(deep=True, index=True).sum())


@dataclass(frozen=True)
class _Entry:
    fingerprint: Hashable
    frame: Any
    nbytes: int
    label: str


class FrameCache:
    """Least-recently-used frames shared by the threads of one process, within a byte budget.

    `max_bytes` None follows settings.LOMAS_DATASET_CACHE_BYTES (read at each store).
    Hits, misses, evictions and invalidations are counted in the dataset cache metric
    under each entry's label, and load times observed.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        return settings.LOMAS_DATASET_CACHE_BYTES if self._max_bytes is None else self._max_bytes

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached frames."""
        return self._bytes

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def clear(self) -> None:
        """Drop every frame (nothing is counted)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get_or_load(
        self,
        key: Hashable,
        load: Callable[[], Cached],
        *,
        fingerprint: Hashable = None,
        label: str = "",
        size: Callable[[Cached], int] = frame_bytes,
    ) -> Cached:
        """The object cached for `key` under `fingerprint`, else `load()`ed (outside the lock) and kept.

        `size` gives the bytes a loaded object holds (a frame's by default).
        """
        label = label or str(key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.fingerprint == fingerprint:
                self._entries.move_to_end(key)
                record_dataset_cache(label, "hit")
                return entry.frame
            if entry is not None:
                self._drop(key, "invalidation")
        record_dataset_cache(label, "miss")
        started = time.perf_counter()
        with tracing.span("dataset.load", dataset=label):
            frame = load()
        observe_dataset_load(label, time.perf_counter() - started)
        return self._store(key, _Entry(fingerprint, frame, size(frame), label))

    def _store(self, key: Hashable, entry: _Entry) -> Any:
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.fingerprint == entry.fingerprint:  # a concurrent load finished first
                self._entries.move_to_end(key)
                return current.frame
            if current is not None:
                self._drop(key, "invalidation")
            if entry.nbytes > self.max_bytes:  # it alone exceeds the budget: served, not kept
                record_dataset_cache(entry.label, "eviction")
                return entry.frame
            self._entries[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)), "eviction")
        return entry.frame

    def _drop(self, key: Hashable, event: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.nbytes
        record_dataset_cache(entry.label, event)
