"""Datasets stored as a CSV or parquet file: a local path or an http(s) URL."""

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

import pandas as pd
from django.conf import settings

from datasets.connectors.base import DataConnector, DatasetUnavailable, only_columns
from datasets.connectors.reading import file_format, read_typed

# Seconds a URL may stay silent (connecting or between received bytes) before the read fails.
URL_TIMEOUT_SECONDS = 30
# Answers to a HEAD request from servers that do not support it: the URL's changes cannot be seen.
_HEAD_UNSUPPORTED = frozenset({405, 501})


class PathConnector(DataConnector):
    """Reads a CSV or parquet file, typed and ordered by the metadata's columns (see reading.read_typed).

    Relative paths are resolved under settings.LOMAS_DATA_DIR; an http(s) URL is downloaded
    on each read. The fingerprint is the file's inode, modification time and size, or the
    URL's ETag, Last-Modified and Content-Length headers.
    """

    def __init__(self, path: str, *, metadata: dict[str, Any]) -> None:
        self.is_url = urlparse(path).scheme in {"http", "https"}
        self.source = path if self.is_url else str(_local_path(path))
        self.metadata = metadata
        self.name = urlparse(path).path if self.is_url else path
        file_format(self.name)
        if not self.is_url and not Path(self.source).is_file():
            raise DatasetUnavailable(f"Dataset file {self.source} does not exist.")

    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read the whole file (once per call: the machine's columnar copy is get_connector's job)."""
        data = self._download() if self.is_url else Path(self.source)
        return only_columns(read_typed(data, name=self.name, metadata=self.metadata, label=self.source), columns)

    def fingerprint(self) -> Hashable:
        """The file's (inode, mtime, size), or the URL's validators from a HEAD request."""
        if not self.is_url:
            try:
                stat = Path(self.source).stat()
            except OSError as exc:
                raise DatasetUnavailable(f"Dataset file {self.source} cannot be read ({type(exc).__name__}).") from exc
            return stat.st_ino, stat.st_mtime_ns, stat.st_size
        try:
            with self._open("HEAD") as response:
                return tuple(response.headers.get(name) for name in ("ETag", "Last-Modified", "Content-Length"))
        except HTTPError as exc:
            if exc.code in _HEAD_UNSUPPORTED:
                return None
            raise DatasetUnavailable(f"Dataset URL {self.source} answered HTTP {exc.code}.") from exc
        except OSError as exc:
            raise DatasetUnavailable(f"Dataset URL {self.source} cannot be reached ({type(exc).__name__}).") from exc

    def _open(self, method: str) -> Any:
        """The URL's response (its scheme was checked to be http or https in __init__)."""
        return urlopen(Request(self.source, method=method), timeout=URL_TIMEOUT_SECONDS)  # noqa: S310

    def _download(self) -> bytes:
        try:
            with self._open("GET") as response:
                return response.read()
        except HTTPError as exc:
            raise DatasetUnavailable(f"Dataset URL {self.source} answered HTTP {exc.code}.") from exc
        except OSError as exc:
            raise DatasetUnavailable(f"Dataset URL {self.source} cannot be reached ({type(exc).__name__}).") from exc


def _local_path(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else Path(settings.LOMAS_DATA_DIR) / candidate
