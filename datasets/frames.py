"""Pandas frames as strictly JSON-serialisable "tight" dicts (lomas-client's PANDAS_SERIALIZATION_ORIENT)."""

import math
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd


def dataframe_to_tight_json(df: pd.DataFrame) -> dict[str, Any]:
    """`df.to_dict(orient="tight")` made JSON-ready.

    Missing values (None, NaN, NaT, pd.NA) and infinities become null, numpy scalars
    become Python scalars, timestamps and dates become ISO strings and durations ISO 8601
    durations, so `json.dumps(..., allow_nan=False)` accepts the result and
    `pd.DataFrame.from_dict(d, orient="tight")` rebuilds the frame.
    """
    tight = df.to_dict(orient="tight")
    return {
        "index": [json_value(value) for value in tight["index"]],
        "columns": [json_value(value) for value in tight["columns"]],
        "data": [[json_value(value) for value in row] for row in tight["data"]],
        "index_names": [json_value(value) for value in tight["index_names"]],
        "column_names": [json_value(value) for value in tight["column_names"]],
    }


def json_value(value: Any) -> Any:
    """One cell as a JSON scalar (see dataframe_to_tight_json)."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.timedelta64):
        value = pd.Timedelta(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple | list):
        return [json_value(item) for item in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | Decimal):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, date | time):  # pd.Timestamp and datetime are dates too
        return value.isoformat()
    if isinstance(value, timedelta):
        return pd.Timedelta(value).isoformat()
    return value
