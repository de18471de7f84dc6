"""Where a dataset's rows come from."""

from abc import ABC, abstractmethod

import pandas as pd
import polars as pl

from lomas.errors import InternalServerError


class DatasetUnavailable(InternalServerError):
    """The dataset's rows cannot be read (missing file, unsupported source, unreadable column): a 500."""


class DataConnector(ABC):
    """Gives a dataset's rows as pandas or polars, typed by its metadata."""

    @abstractmethod
    def get_pandas(self) -> pd.DataFrame:
        """The whole dataset as a pandas frame (callers must not modify it)."""

    def get_polars(self) -> pl.LazyFrame:
        """The whole dataset as a polars LazyFrame."""
        return pl.from_pandas(self.get_pandas()).lazy()
