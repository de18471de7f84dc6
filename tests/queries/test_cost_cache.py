"""Cost estimates are remembered: a repeated estimate neither loads nor reads the dataset, and
any change of request, data file or metadata computes the cost again."""

from typing import Any

from prometheus_client import REGISTRY

from datasets.services import dataset_set_metadata

COUNT = "SELECT COUNT(*) AS n FROM df"


def _estimate(api: Any, submit: Any, **overrides: Any) -> dict[str, float]:
    body = {"dataset_name": "PENGUIN", "query_str": COUNT, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {},
            "postprocess": True, **overrides}  # fmt: skip
    accepted = submit(api, "estimate_smartnoise_sql_cost", body)
    status = api.get(f"/api/status/{accepted.json()['uid']}")
    assert status.status_code == 200, status.content
    return status.json()["result"]


def _frame_lookups() -> float:
    """Every lookup of PENGUIN in the dataset cache (hits and misses)."""
    return sum(
        REGISTRY.get_sample_value("lomas_dataset_cache_events_total", {"dataset": "PENGUIN", "event": event}) or 0.0
        for event in ("hit", "miss")
    )


def test_a_repeated_estimate_is_answered_without_touching_the_data(alice_api, submit):
    first = _estimate(alice_api, submit)
    lookups = _frame_lookups()
    assert _estimate(alice_api, submit) == first
    assert _frame_lookups() == lookups


def test_another_request_is_costed_anew(alice_api, submit):
    assert _estimate(alice_api, submit)["epsilon"] == 1.0
    assert _estimate(alice_api, submit, epsilon=2.0)["epsilon"] == 2.0


def test_a_changed_data_file_or_metadata_computes_the_cost_again(alice_api, submit, penguin, _data_dir):
    first = _estimate(alice_api, submit)
    data_file = _data_dir / "penguin.csv"
    rows = data_file.read_text().splitlines(keepends=True)
    data_file.unlink()
    data_file.write_text("".join(rows[:-1]))  # the data owner replaces the file
    lookups = _frame_lookups()
    assert _estimate(alice_api, submit) == first
    assert _frame_lookups() > lookups

    dataset_set_metadata(dataset=penguin, metadata={**penguin.metadata, "maxLength": 400})
    lookups = _frame_lookups()
    assert _estimate(alice_api, submit) == first
    assert _frame_lookups() > lookups
