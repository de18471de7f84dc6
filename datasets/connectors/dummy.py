"""Dummy rows generated from the metadata, for dummy queries."""

from collections.abc import Sequence
from typing import Any

import pandas as pd

from datasets.connectors.base import DataConnector, only_columns
from datasets.dummy import make_dummy_frame


class DummyConnector(DataConnector):
    """A seeded dummy frame (spec §5), generated on first use and kept by this instance."""

    def __init__(self, metadata: dict[str, Any], nb_rows: int, seed: int) -> None:
        self.metadata = metadata
        self.nb_rows = nb_rows
        self.seed = seed
        self._frame: pd.DataFrame | None = None

    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The dummy frame (the same object on every call), or its named columns."""
        if self._frame is None:
            self._frame = make_dummy_frame(self.metadata, nb_rows=self.nb_rows, seed=self.seed)
        return only_columns(self._frame, columns)
