"""Where a dataset's rows come from."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
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
    """Gives a dataset's rows as pandas or polars, typed by its metadata."""

    # Where the rows are read from (a path, URL or s3:// address), for cache keys and messages.
    source: str = ""

    @abstractmethod
    def get_pandas(self) -> pd.DataFrame:
        """The whole dataset as a pandas frame (callers must not modify it)."""

    def get_polars(self) -> pl.LazyFrame:
        """The whole dataset as a polars LazyFrame."""
        return pl.from_pandas(self.get_pandas()).lazy()

    def derived(self, name: str, build: Callable[[pd.DataFrame], Derived]) -> Derived:
        """`build(frame)`: an object made from the frame, such as a library's copy of the data.

        It must not be modified by its users. A caching connector keeps it with the frame
        under `name`, which must say everything besides the data that `build` depends on.
        """
        return build(self.get_pandas())

    def fingerprint(self) -> Hashable:
        """A cheap token that changes when the stored data changes (None: the source cannot tell)."""
        return None

    def sql_table(self) -> "PostgresConnector | None":
        """The database table the rows live in, where a query can run inside the database (None: load the rows)."""
        return None
