"""Where a dataset's rows come from."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
import polars as pl

from lomas.errors import InternalServerError

if TYPE_CHECKING:
    from datasets.connectors.postgres import PostgresConnector

Derived = TypeVar("Derived")


class DatasetUnavailable(InternalServerError):
    """The dataset's rows cannot be read (missing file, unsupported source, unreadable column): a 500."""


class DataConnector(ABC):
    """Gives a dataset's rows as pandas or polars, typed by its metadata.

    The interface every source implements (a subclass needs only get_pandas): get_pandas,
    get_polars, derived, prepare, shared_file and fingerprint.
    """

    # Where the rows are read from (a path, URL or s3:// address), for cache keys and messages.
    source: str = ""

    @abstractmethod
    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The dataset as a pandas frame, all columns or only `columns` (callers must not modify it)."""

    def get_polars(self) -> pl.LazyFrame:
        """The whole dataset as a polars LazyFrame."""
        return pl.from_pandas(self.get_pandas()).lazy()

    def derived(self, name: str, build: Callable[[pd.DataFrame], Derived]) -> Derived:
        """`build(frame)`: an object made from the frame, such as a library's copy of the data.

        It must not be modified by its users. A caching connector keeps it with the frame
        under `name`, which must say everything besides the data that `build` depends on.
        """
        return build(self.get_pandas())

    def prepare(self) -> None:  # noqa: B027 (optional hook)
        """Make the rows quick to read, such as the machine's columnar copy (nothing by default)."""

    def shared_file(self, name: str, build: Callable[[Path], None]) -> Path | None:
        """A file made from this dataset version, kept once per machine beside its columnar copy.

        `build(path)` writes it from this connector's rows; `name` (a file-name suffix) must say
        everything besides the rows that it depends on. None: the source keeps no machine copy
        (dummy rows, a database table), and the caller works on the rows themselves.
        """
        return None

    def fingerprint(self) -> Hashable:
        """A cheap token that changes when the stored data changes (None: the source cannot tell)."""
        return None

    def sql_table(self) -> "PostgresConnector | None":
        """The database table the rows live in, where a query can run inside the database (None: load the rows)."""
        return None


def only_columns(frame: pd.DataFrame, columns: Sequence[str] | None) -> pd.DataFrame:
    """The frame itself, or a frame of the named columns only (they must be the frame's)."""
    return frame if columns is None else frame[list(columns)]
