"""The machine's columnar copies of dataset versions: hits, least-recently-used eviction within the byte
budget, invalidation when the file, the S3 object or the metadata changes, and the metrics of each."""

import functools
import shutil
import threading
from collections.abc import Iterator
from copy import deepcopy
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from prometheus_client import REGISTRY

from datasets.connectors import FRAMES, STORE, get_connector
from datasets.models import Dataset
from datasets.services import dataset_create, dataset_set_metadata
from tests.conftest import DEMO, demo_metadata
from tests.datasets.conftest import CREDENTIALS_NAME

pytestmark = pytest.mark.django_db

EVENTS = ("hit", "miss", "eviction", "invalidation")


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    FRAMES.clear()
    yield
    FRAMES.clear()


def stored(dataset: Dataset) -> list[str]:
    """The names of the dataset's files in the machine's store."""
    return sorted(path.name for path in STORE.files() if path.name.startswith(f"{dataset.pk}."))


class Metrics:
    """The dataset cache counters and load observations of one dataset, counted from creation."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        labels = {"dataset": self.dataset}
        counts = {
            event: REGISTRY.get_sample_value("lomas_dataset_cache_events_total", {**labels, "event": event}) or 0.0
            for event in EVENTS
        }
        counts["loads"] = REGISTRY.get_sample_value("lomas_dataset_load_seconds_count", labels) or 0.0
        return counts

    def since(self) -> dict[str, int]:
        now = self._now()
        return {name: int(now[name] - self.start[name]) for name in now}


def counts(**events: int) -> dict[str, int]:
    return {"hit": 0, "miss": 0, "eviction": 0, "invalidation": 0, "loads": 0, **events}


def local_dataset(name: str, csv: str, data_dir: Path) -> Dataset:
    """A dataset over a private copy of a demo CSV (so the test may change the file)."""
    shutil.copy(DEMO / "datasets" / f"{csv}.csv", data_dir / f"{name}.csv")
    return dataset_create(name=name, metadata=demo_metadata(csv), path=f"{name}.csv")


def test_a_second_read_is_a_hit_on_the_same_file(_data_dir):
    penguin = local_dataset("PENGUIN", "penguin", _data_dir)
    metrics = Metrics("PENGUIN")

    first = get_connector(penguin).get_pandas()
    second = get_connector(penguin).get_pandas()

    pd.testing.assert_frame_equal(first, second)
    assert len(first) == 344
    assert metrics.since() == counts(miss=1, hit=1, loads=1)
    [name] = stored(penguin)
    assert name.endswith(".arrow")
    assert STORE.nbytes() == (STORE.root / name).stat().st_size
    assert FRAMES.nbytes == 0  # nothing held by the process


def test_polars_scans_the_same_file_and_pandas_reads_only_the_named_columns(_data_dir):
    penguin = local_dataset("PENGUIN", "penguin", _data_dir)
    metrics = Metrics("PENGUIN")

    scan = get_connector(penguin).get_polars()
    species = get_connector(penguin).get_pandas(columns=["species"])

    assert isinstance(scan, pl.LazyFrame)
    assert scan.collect().equals(pl.from_pandas(get_connector(penguin).get_pandas()))
    assert list(species.columns) == ["species"] and len(species) == 344
    assert metrics.since() == counts(miss=1, hit=2, loads=1)


def test_the_least_recently_used_dataset_is_evicted_beyond_the_byte_budget(_data_dir, settings):
    datasets = {name: local_dataset(name.upper(), name, _data_dir) for name in ("penguin", "iris", "titanic")}
    sizes = {name: get_connector(dataset).rows_file.stat().st_size for name, dataset in datasets.items()}
    STORE.clear()
    settings.LOMAS_DATASET_CACHE_BYTES = sum(sizes.values()) - 1  # room for any two, not for three
    metrics = {name: Metrics(name.upper()) for name in datasets}

    get_connector(datasets["penguin"]).get_pandas()
    get_connector(datasets["iris"]).get_pandas()
    get_connector(datasets["penguin"]).get_pandas()  # iris is now the least recently used
    get_connector(datasets["titanic"]).get_pandas()  # evicts iris
    get_connector(datasets["penguin"]).get_pandas()
    get_connector(datasets["iris"]).get_pandas()  # loaded again, evicting titanic

    assert metrics["penguin"].since() == counts(miss=1, hit=2, loads=1)
    assert metrics["iris"].since() == counts(miss=2, eviction=1, loads=2)
    assert metrics["titanic"].since() == counts(miss=1, eviction=1, loads=1)
    assert STORE.nbytes() == sizes["penguin"] + sizes["iris"] <= settings.LOMAS_DATASET_CACHE_BYTES


def test_a_file_larger_than_the_budget_is_kept_alone(_data_dir, settings):
    settings.LOMAS_DATASET_CACHE_BYTES = 0
    penguin, iris = local_dataset("PENGUIN", "penguin", _data_dir), local_dataset("IRIS", "iris", _data_dir)
    metrics = Metrics("PENGUIN")

    first = get_connector(penguin).get_pandas()
    second = get_connector(penguin).get_pandas()
    get_connector(iris).get_pandas()

    assert len(first) == len(second) == 344
    assert metrics.since() == counts(miss=1, hit=1, eviction=1, loads=1)
    assert stored(penguin) == [] and len(stored(iris)) == 1


def test_a_changed_file_is_read_again_and_the_old_version_removed(_data_dir):
    penguin = local_dataset("PENGUIN", "penguin", _data_dir)
    metrics = Metrics("PENGUIN")
    get_connector(penguin).get_pandas()
    [old] = stored(penguin)
    lines = (_data_dir / "PENGUIN.csv").read_text(encoding="utf-8").splitlines(keepends=True)

    (_data_dir / "PENGUIN.csv").write_text("".join(lines[:11]), encoding="utf-8")
    changed = get_connector(penguin).get_pandas()

    assert len(changed) == 10
    assert metrics.since() == counts(miss=2, invalidation=1, loads=2)
    assert len(get_connector(penguin).get_pandas()) == 10
    assert len(stored(penguin)) == 1 and stored(penguin) != [old]


def test_a_changed_s3_object_is_read_again(moto_s3, s3_bucket):
    client = moto_s3.client()
    lines = (DEMO / "datasets" / "penguin.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    client.put_object(Bucket=s3_bucket, Key="penguin.csv", Body="".join(lines).encode())
    penguin = dataset_create(
        name="PENGUIN",
        metadata=demo_metadata("penguin"),
        access=Dataset.Access.S3,
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_bucket=s3_bucket,
        s3_key="penguin.csv",
        s3_credentials_name=CREDENTIALS_NAME,
    )
    metrics = Metrics("PENGUIN")
    first = get_connector(penguin).get_pandas()
    pd.testing.assert_frame_equal(get_connector(penguin).get_pandas(), first)

    client.put_object(Bucket=s3_bucket, Key="penguin.csv", Body="".join(lines[:6]).encode())
    changed = get_connector(penguin).get_pandas()

    assert (len(first), len(changed)) == (344, 5)
    assert metrics.since() == counts(miss=2, hit=1, invalidation=1, loads=2)


def test_a_changed_url_is_read_again(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    lines = (DEMO / "datasets" / "penguin.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "penguin.csv").write_text("".join(lines), encoding="utf-8")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/penguin.csv"
        penguin = dataset_create(name="PENGUIN", metadata=demo_metadata("penguin"), path=url)
        metrics = Metrics("PENGUIN")
        first = get_connector(penguin).get_pandas()
        pd.testing.assert_frame_equal(get_connector(penguin).get_pandas(), first)

        (root / "penguin.csv").write_text("".join(lines[:21]), encoding="utf-8")  # another Content-Length
        changed = get_connector(penguin).get_pandas()
    finally:
        server.shutdown()
        server.server_close()

    assert (len(first), len(changed)) == (344, 20)
    assert metrics.since() == counts(miss=2, hit=1, invalidation=1, loads=2)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_changed_metadata_is_read_again(_data_dir):
    penguin = local_dataset("PENGUIN", "penguin", _data_dir)
    metrics = Metrics("PENGUIN")
    first = get_connector(penguin).get_pandas()
    metadata = deepcopy(penguin.metadata)
    metadata["tableSchema"]["columns"] = [c for c in metadata["tableSchema"]["columns"] if c["name"] != "bill_depth_mm"]

    penguin = dataset_set_metadata(dataset=penguin, metadata=metadata)
    changed = get_connector(penguin).get_pandas()

    assert "bill_depth_mm" in first.columns and "bill_depth_mm" not in changed.columns
    assert metrics.since() == counts(miss=2, invalidation=1, loads=2)


def test_metadata_changed_without_a_new_version_is_seen_too(_data_dir):
    penguin = local_dataset("PENGUIN", "penguin", _data_dir)
    metrics = Metrics("PENGUIN")
    get_connector(penguin).get_pandas()
    metadata = deepcopy(penguin.metadata)
    metadata["tableSchema"]["columns"] = metadata["tableSchema"]["columns"][:2]

    Dataset.objects.filter(pk=penguin.pk).update(metadata=metadata)  # a raw write: the version stays
    penguin.refresh_from_db()
    changed = get_connector(penguin).get_pandas()

    assert list(changed.columns) == [column["name"] for column in metadata["tableSchema"]["columns"]]
    assert metrics.since() == counts(miss=2, invalidation=1, loads=2)
