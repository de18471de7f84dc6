"""Connectors: typed reads of local and http(s) files, the per-process frame cache, dummy rows."""

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from datasets.connectors import CachedConnector, get_connector, get_dummy_connector
from datasets.connectors.base import DatasetUnavailable
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector
from datasets.dummy import make_dummy_frame
from datasets.metadata import column_dtypes, column_names
from datasets.models import Dataset

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"


def load(name: str) -> dict[str, Any]:
    return json.loads((DEMO / "metadata" / f"{name}.json").read_text(encoding="utf-8"))


def raw_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(DEMO / "datasets" / f"{name}.csv")


@pytest.fixture
def data_dir(settings: Any) -> Path:
    """The per-test LOMAS_DATA_DIR that tests/conftest.py fills with the demo CSVs."""
    return Path(settings.LOMAS_DATA_DIR)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on localhost serving a temporary directory."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_penguin_columns_are_typed_from_the_metadata(data_dir: Path) -> None:
    penguin = load("penguin")

    frame = PathConnector("penguin.csv", metadata=penguin).get_pandas()

    assert frame.shape == (344, 7)
    assert list(frame.columns) == column_names(penguin)
    assert frame.dtypes.astype(str).to_dict() == {
        "species": "string",
        "island": "string",
        "bill_length_mm": "float64",
        "bill_depth_mm": "float64",
        "flipper_length_mm": "float64",
        "body_mass_g": "float64",
        "sex": "string",
    }
    assert frame.isna().sum().to_dict() == raw_csv("penguin").isna().sum().to_dict()
    assert frame.iloc[0].tolist() == ["Adelie", "Torgersen", 39.1, 18.7, 181.0, 3750.0, "MALE"]


def test_columns_follow_metadata_order_and_0_1_become_booleans(data_dir: Path) -> None:
    titanic = load("titanic")

    frame = PathConnector("titanic.csv", metadata=titanic).get_pandas()

    assert list(frame.columns) == column_names(titanic)  # the CSV starts with Survived
    assert frame.dtypes.astype(str).to_dict() == column_dtypes(titanic)
    assert frame["Survived"].tolist() == (raw_csv("titanic")["Survived"] == 1).tolist()
    assert frame["Pclass"].tolist() == raw_csv("titanic")["Pclass"].tolist()


def test_dates_are_parsed_to_datetime64(data_dir: Path) -> None:
    frame = PathConnector("birthday.csv", metadata=load("birthday")).get_pandas()

    assert str(frame["birthday"].dtype) == "datetime64[ns]"
    assert frame["birthday"][0] == pd.Timestamp("1903-12-11")


def test_text_booleans_are_read_and_extra_columns_dropped(tmp_path: Path) -> None:
    path = tmp_path / "pums.csv"
    raw = raw_csv("pums").head(4).assign(sex=["yes", "No", "TRUE", ""], extra=1)
    raw.to_csv(path, index=False)

    frame = PathConnector(str(path), metadata=load("pums")).get_pandas()

    assert list(frame.columns) == column_names(load("pums"))
    assert frame["sex"].tolist() == [True, False, True, pd.NA]


def test_parquet_is_read_and_typed_like_csv(data_dir: Path, tmp_path: Path) -> None:
    penguin = load("penguin")
    from_csv = PathConnector("penguin.csv", metadata=penguin).get_pandas()
    shuffled = from_csv[list(reversed(from_csv.columns))].assign(extra="x").astype({"species": object})
    shuffled.to_parquet(tmp_path / "penguin.parquet", index=False)

    from_parquet = PathConnector(str(tmp_path / "penguin.parquet"), metadata=penguin).get_pandas()

    pd.testing.assert_frame_equal(from_parquet, from_csv)


def test_a_generated_parquet_dataset_reads_back_identical(tmp_path: Path) -> None:
    covid = load("covid_synthetic")
    frame = make_dummy_frame(covid, nb_rows=1000, seed=0)
    frame.to_parquet(tmp_path / "covid.parquet", index=False)

    read = PathConnector(str(tmp_path / "covid.parquet"), metadata=covid).get_pandas()

    pd.testing.assert_frame_equal(read, frame)


def test_csv_and_parquet_are_read_over_http(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    penguin = load("penguin")
    shutil.copy(DEMO / "datasets" / "penguin.csv", root / "penguin.csv")
    expected = PathConnector(str(root / "penguin.csv"), metadata=penguin).get_pandas()
    expected.to_parquet(root / "penguin.parquet", index=False)

    for name in ("penguin.csv", "penguin.parquet"):
        pd.testing.assert_frame_equal(PathConnector(f"{base}/{name}", metadata=penguin).get_pandas(), expected)


def test_an_unreachable_url_is_unavailable(http_root: tuple[str, Path]) -> None:
    base, _ = http_root

    with pytest.raises(DatasetUnavailable, match=r"^Dataset URL .*absent\.csv answered HTTP 404\.$"):
        PathConnector(f"{base}/absent.csv", metadata=load("penguin")).get_pandas()


def test_a_missing_file_is_refused_when_the_connector_is_built(data_dir: Path) -> None:
    with pytest.raises(DatasetUnavailable, match=r"^Dataset file .*nowhere\.csv does not exist\.$") as caught:
        PathConnector("nowhere.csv", metadata=load("penguin"))

    assert caught.value.status == 500
    assert caught.value.to_wire() == {"type": "InternalServerException"}


def test_an_unknown_file_type_is_refused(data_dir: Path) -> None:
    (data_dir / "penguin.json").write_text("{}", encoding="utf-8")

    with pytest.raises(DatasetUnavailable, match=r"^Unsupported dataset file type for penguin\.json"):
        PathConnector("penguin.json", metadata=load("penguin"))


def test_a_file_without_a_metadata_column_is_refused(tmp_path: Path) -> None:
    raw_csv("penguin").drop(columns=["sex", "island"]).to_csv(tmp_path / "p.csv", index=False)

    with pytest.raises(DatasetUnavailable, match=r"lacks the metadata's columns \['island', 'sex'\]\.$"):
        PathConnector(str(tmp_path / "p.csv"), metadata=load("penguin")).get_pandas()


@pytest.mark.parametrize(
    ("column", "secret", "message"),
    [
        ("sex", "maybe-secret-42", r"^Column sex cannot be read as boolean\.$"),
        ("educ", "3.25", r"^Column educ cannot be read as Int64\.$"),
        ("income", "lots-secret", r"^Column income cannot be read as float64\.$"),
    ],
)
def test_a_value_that_does_not_fit_its_datatype_is_not_quoted(
    tmp_path: Path, column: str, secret: str, message: str
) -> None:
    raw = raw_csv("pums").astype({column: object})
    raw.loc[5, column] = secret
    raw.to_csv(tmp_path / "p.csv", index=False)

    with pytest.raises(DatasetUnavailable, match=message) as caught:
        PathConnector(str(tmp_path / "p.csv"), metadata=load("pums")).get_pandas()

    assert secret not in str(caught.value)


def test_unparseable_dates_are_refused_without_quoting_them(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("birthday\n2001-02-03\nnot-a-date-secret\n", encoding="utf-8")

    with pytest.raises(DatasetUnavailable, match=r"^Column birthday cannot be read as datetime64\[ns\]\.$"):
        PathConnector(str(tmp_path / "b.csv"), metadata=load("birthday")).get_pandas()


def make_dataset(**fields: Any) -> Dataset:
    return Dataset(**{"pk": 7, "name": "MINE", "access": "PATH_DB", "metadata": load("penguin"), **fields})


def test_get_connector_reads_a_file_once_per_version(data_dir: Path) -> None:
    shutil.copy(DEMO / "datasets" / "penguin.csv", data_dir / "mine.csv")
    dataset = make_dataset(path="mine.csv", version=1)

    first = get_connector(dataset).get_pandas()
    second = get_connector(dataset).get_pandas()
    (data_dir / "mine.csv").write_text(",".join(column_names(load("penguin"))) + "\n", encoding="utf-8")
    third = get_connector(dataset).get_pandas()

    pd.testing.assert_frame_equal(second, first)
    assert len(first) == 344
    assert len(third) == 0  # a changed file is read again


def test_cached_connector_serves_its_source_through_the_store() -> None:
    source = DummyConnector(load("iris"), 10, 3)

    frame = CachedConnector(source, key="iris").get_pandas()

    # Another connector of the same key and version is served the stored rows, not its source's.
    pd.testing.assert_frame_equal(CachedConnector(DummyConnector(load("iris"), 10, 4), key="iris").get_pandas(), frame)


def test_dummy_connector_gives_the_seeded_dummy_frame() -> None:
    dataset = make_dataset(metadata=load("titanic"))

    frame = get_dummy_connector(dataset, nb_rows=100, seed=42).get_pandas()

    assert frame.shape == (100, 8)
    pd.testing.assert_frame_equal(frame, make_dummy_frame(load("titanic"), nb_rows=100, seed=42))
