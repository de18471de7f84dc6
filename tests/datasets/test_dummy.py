"""Seeded dummy frames and their JSON wire form."""

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from datasets.dummy import frame_to_wire, make_dummy_frame, metadata_for_rows, write_dummy_parquet
from datasets.frames import dataframe_to_tight_json
from datasets.metadata import column_dtypes, column_names

METADATA_DIR = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "metadata"
DEMO_FILES = sorted(METADATA_DIR.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((METADATA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def client_frame(wire: dict[str, Any]) -> pd.DataFrame:
    """What lomas-client 0.5.1's DummyDsResponse does with the body."""
    body = json.loads(json.dumps(wire, allow_nan=False))
    return pd.DataFrame.from_dict(body["dummy_df"], orient="tight").astype(body["dtypes"])


def test_same_seed_gives_the_same_frame_and_another_seed_another() -> None:
    penguin = load("penguin")

    first = make_dummy_frame(penguin, nb_rows=200, seed=7)
    again = make_dummy_frame(penguin, nb_rows=200, seed=7)
    other = make_dummy_frame(penguin, nb_rows=200, seed=8)

    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_titanic_dummy_has_the_metadata_shape_order_and_dtypes() -> None:
    titanic = load("titanic")

    frame = make_dummy_frame(titanic, nb_rows=100, seed=42)

    assert frame.shape == (100, 8)
    assert list(frame.columns) == column_names(titanic)
    assert frame.dtypes.astype(str).to_dict() == column_dtypes(titanic)


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda path: path.stem)
def test_wire_form_is_strict_json_and_loads_back_as_the_client_loads_it(path: Path) -> None:
    metadata = json.loads(path.read_text(encoding="utf-8"))
    frame = make_dummy_frame(metadata, nb_rows=100, seed=42)

    wire = frame_to_wire(frame)

    assert wire["dtypes"] == column_dtypes(metadata)
    assert set(wire["dummy_df"]) == {"index", "columns", "data", "index_names", "column_names"}
    pd.testing.assert_frame_equal(client_frame(wire), frame)


def test_missing_values_travel_as_null() -> None:
    frame = make_dummy_frame(load("penguin"), nb_rows=100, seed=42)

    data = frame_to_wire(frame)["dummy_df"]["data"]

    sex = column_names(load("penguin")).index("sex")
    assert frame["sex"].isna().sum() == 4  # nullableProportion 0.04
    assert sum(row[sex] is None for row in data) == 4


def test_dates_travel_as_iso_strings() -> None:
    frame = make_dummy_frame(load("birthday"), nb_rows=10, seed=1)

    data = frame_to_wire(frame)["dummy_df"]["data"]

    assert all(dt.datetime.fromisoformat(row[0]) for row in data)
    assert data[0][0] == frame["birthday"][0].isoformat()


def test_tight_json_turns_every_pandas_and_numpy_scalar_into_json() -> None:
    frame = pd.DataFrame(
        {
            "f": [1.5, np.nan, np.inf],
            "i": pd.array([1, None, 3], dtype="Int64"),
            "b": pd.array([True, None, False], dtype="boolean"),
            "s": pd.array(["a", None, "c"], dtype="string"),
            "t": pd.to_datetime(["2020-01-02 03:04:05", None, "2021-01-01 00:00:00"]),
            "d": pd.to_timedelta(["1.5s", None, "1D"]),
            "o": [np.int64(7), dt.date(2020, 1, 2), None],
        }
    )

    tight = dataframe_to_tight_json(frame)

    assert tight == {
        "index": [0, 1, 2],
        "columns": ["f", "i", "b", "s", "t", "d", "o"],
        "data": [
            [1.5, 1, True, "a", "2020-01-02T03:04:05", "P0DT0H0M1.5S", 7],
            [None, None, None, None, None, None, "2020-01-02"],
            [None, 3, False, "c", "2021-01-01T00:00:00", "P1DT0H0M0S", None],
        ],
        "index_names": [None],
        "column_names": [None],
    }
    assert type(tight["data"][0][6]) is int
    json.dumps(tight, allow_nan=False)


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda path: path.stem)
def test_a_parquet_written_in_chunks_has_every_row_the_metadata_types_and_is_reproducible(path, tmp_path) -> None:
    metadata = load(path.stem)
    (tmp_path / "out").mkdir()
    first, second = tmp_path / "out" / "first.parquet", tmp_path / "out" / "second.parquet"

    write_dummy_parquet(metadata, first, nb_rows=25, seed=3, chunk_rows=10)
    write_dummy_parquet(metadata, second, nb_rows=25, seed=3, chunk_rows=10)

    frame = pd.read_parquet(first)
    assert len(frame) == 25 and list(frame.columns) == column_names(metadata)
    assert first.read_bytes() == second.read_bytes()
    chunks = [make_dummy_frame(metadata, nb_rows=rows, seed=3 + index) for index, rows in enumerate((10, 10, 5))]
    expected = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["first.parquet", "second.parquet"]


def test_metadata_for_more_rows_scales_the_table_and_column_lengths() -> None:
    metadata = load("fso_income_synthetic")

    scaled = metadata_for_rows(metadata, nb_rows=20_000_000)

    assert scaled["maxLength"] == scaled["publicLength"] == 20_000_000
    region = next(column for column in scaled["tableSchema"]["columns"] if column["name"] == "region")
    assert region["maxLength"] == math.ceil(474690 * 20_000_000 / 2032543)
    assert metadata["maxLength"] == 2032543  # the original is left as it was
