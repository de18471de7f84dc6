"""One local copy of each dataset version per machine, shared by every process (see README, "Datasets").

A dataset's rows are converted once per version into an uncompressed Arrow IPC file under
settings.LOMAS_DATASET_STORE_DIR that every process memory-maps: polars scans it lazily
and pandas reads only the columns asked for, so the pages are the kernel's, counted once
per machine whatever the number of processes. Files derived from the rows (SmartNoise-SQL's
SQLite database) sit beside it and share its version.

A version is named by a digest of the connector's fingerprint (the dataset's version, its
metadata digest, the source and the source's own fingerprint: file stat, S3 ETag, URL
validators), so a changed source or metadata gets a new file and the older files of the
dataset are removed. A file is built under an exclusive lock, into a temporary file renamed
into place, so processes racing for it build it once. The files together stay within
settings.LOMAS_DATASET_CACHE_BYTES: the least recently used are removed beyond it (a process
that mapped a removed file keeps reading it until it is done).
"""

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
from django.conf import settings
from pyarrow import feather

from lomas import tracing
from lomas.metrics import observe_dataset_load, record_dataset_cache

logger = logging.getLogger("datasets")

ROWS_SUFFIX = ".arrow"
_LOCKS = ".locks"


def version_digest(fingerprint: Hashable) -> str:
    """A file-name-safe digest of a connector fingerprint, the same in every process."""
    return hashlib.sha256(json.dumps(fingerprint, default=str).encode()).hexdigest()[:32]


class ColumnarStore:
    """The machine's copies of dataset versions, in one directory (settings.LOMAS_DATASET_STORE_DIR).

    Files are named `<key>-<digest><name>`: a key (`<id>.<name>` for a dataset, without "-") names
    the dataset, the digest its version.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return Path(settings.LOMAS_DATASET_STORE_DIR) if self._root is None else self._root

    def rows(self, *, key: str, digest: str, label: str, load: Callable[[], pd.DataFrame]) -> Path:
        """The Arrow file of this dataset version, converted from `load()` if this machine has none yet."""

        def write(path: Path) -> None:
            frame = load()
            feather.write_feather(
                pa.Table.from_pandas(frame, preserve_index=False), str(path), compression="uncompressed"
            )

        return self.file(key=key, digest=digest, name=ROWS_SUFFIX, label=label, build=write)

    def file(self, *, key: str, digest: str, name: str, label: str, build: Callable[[Path], None]) -> Path:
        """The file `name` of this dataset version, `build(temporary path)` once per machine.

        A new version removes the dataset's files of other versions; files beyond the byte budget
        are removed least recently used first (never the one returned).
        """
        path = self.root / f"{key}-{digest}{name}"
        if _touch(path):
            record_dataset_cache(label, "hit")
            return path
        with self._locked(path):
            if _touch(path):  # another process built it while this one waited
                record_dataset_cache(label, "hit")
                return path
            record_dataset_cache(label, "miss")
            started = time.perf_counter()
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                with tracing.span("dataset.load", dataset=label):
                    build(temporary)
                temporary.replace(path)
                _touch(path)
            finally:
                temporary.unlink(missing_ok=True)
            seconds = time.perf_counter() - started
            observe_dataset_load(label, seconds)
            logger.info("dataset %s: built %s in %.3f s", label, path.name, seconds)
        self._remove_other_versions(key=key, digest=digest, label=label)
        self._keep_within_budget(keep=path)
        return path

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        locks = self.root / _LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / path.name).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def files(self) -> list[Path]:
        """The built files of every dataset version (no temporary file, no lock)."""
        if not self.root.is_dir():
            return []
        return [path for path in self.root.iterdir() if path.is_file() and not path.name.startswith(".")]

    def nbytes(self) -> int:
        """Bytes the built files take on this machine."""
        return sum(_size(path) for path in self.files())

    def _remove_other_versions(self, *, key: str, digest: str, label: str) -> None:
        for path in self.files():
            if path.name.startswith(f"{key}-") and not path.name.startswith(f"{key}-{digest}"):
                path.unlink(missing_ok=True)
                (self.root / _LOCKS / path.name).unlink(missing_ok=True)
                record_dataset_cache(label, "invalidation")

    def _keep_within_budget(self, *, keep: Path) -> None:
        files = sorted((path for path in self.files() if path != keep), key=_used_at)
        total = self.nbytes()
        for path in files:
            if total <= settings.LOMAS_DATASET_CACHE_BYTES:
                return
            total -= _size(path)
            path.unlink(missing_ok=True)
            record_dataset_cache(_label(path), "eviction")

    def clear(self) -> None:
        """Remove every file (tests; processes that mapped one keep reading it)."""
        for path in self.files():
            path.unlink(missing_ok=True)


def _label(path: Path) -> str:
    """The dataset a file belongs to, for metrics: the name in its key `<id>.<name>` (else the key)."""
    key = path.name.split("-", 1)[0]
    return key.partition(".")[2] or key


def _touch(path: Path) -> bool:
    """Mark the file used now (the budget removes the least recently used); False if it does not exist.

    The time is given in nanoseconds: the kernel's own "now" for a file is coarse (a few
    milliseconds), so two uses in a row could tie and evict the one used last.
    """
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except FileNotFoundError:
        return False
    return True


def _used_at(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
