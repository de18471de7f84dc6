"""Seeded dummy datasets generated from metadata alone (spec §5)."""

import warnings
from typing import Any

import pandas as pd
from csvw_eo.make_dummy_from_metadata import make_dummy_from_metadata

from datasets.frames import dataframe_to_tight_json


def make_dummy_frame(metadata: dict[str, Any], *, nb_rows: int, seed: int) -> pd.DataFrame:
    """A dummy frame with the metadata's columns and dtypes; the same seed gives the same frame."""
    with warnings.catch_warnings():
        # csvw-eo writes nulls through a column view; the frame it returns is correct.
        warnings.simplefilter("ignore", pd.errors.SettingWithCopyWarning)
        return make_dummy_from_metadata(metadata, nb_rows=nb_rows, seed=seed)


def frame_to_wire(df: pd.DataFrame) -> dict[str, Any]:
    """DummyDsResponse body: column dtypes and the frame as a JSON-ready tight dict."""
    return {
        "dtypes": {str(name): str(dtype) for name, dtype in df.dtypes.items()},
        "dummy_df": dataframe_to_tight_json(df),
    }
