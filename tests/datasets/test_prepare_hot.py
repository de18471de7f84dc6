"""Hot datasets are prepared when a worker starts: the machine's columnar copy, OpenDP's conformed copy,
SmartNoise-SQL's SQLite file and the twins, so the first query reads what is ready."""

from prometheus_client import REGISTRY

from datasets.connectors import STORE
from queries.services import dataset_prepare_hot


def _events(dataset: str, event: str) -> float:
    labels = {"dataset": dataset, "event": event}
    return REGISTRY.get_sample_value("lomas_dataset_cache_events_total", labels) or 0.0


def test_hot_datasets_are_converted_before_their_first_query(alice_api, submit, penguin, iris, settings):
    settings.LOMAS_HOT_DATASETS = ["PENGUIN"]

    dataset_prepare_hot()

    names = sorted(path.name for path in STORE.files())
    # the columnar copy, OpenDP's conformed copy of it and SmartNoise-SQL's SQLite file
    assert [name.split(".")[2].split("-")[0] for name in names] == ["arrow", "opendp", "snsql"]
    assert all(name.startswith(f"{penguin.pk}.PENGUIN-") for name in names)
    misses = _events("PENGUIN", "miss")
    body = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0,
            "delta": 1e-5, "mechanisms": {}, "postprocess": True}  # fmt: skip
    accepted = submit(alice_api, "smartnoise_sql_query", body)
    assert alice_api.get(f"/api/status/{accepted.json()['uid']}").status_code == 200
    assert _events("PENGUIN", "miss") == misses  # nothing built by the query


def test_every_dataset_is_hot_with_a_star(penguin, iris, settings):
    settings.LOMAS_HOT_DATASETS = ["*"]

    dataset_prepare_hot()

    assert {path.name.split("-", 1)[0] for path in STORE.files()} == {f"{iris.pk}.IRIS", f"{penguin.pk}.PENGUIN"}
