"""Cost estimates never read the private data and are remembered per user: a repeated estimate is
not costed again, another researcher's identical estimate is, and a changed request or metadata is."""

from typing import Any

from prometheus_client import REGISTRY

from budgets.services import budget_grant
from datasets.services import dataset_set_metadata
from tests.conftest import api_client_for

COUNT = "SELECT COUNT(*) AS n FROM df"


def _estimate(api: Any, submit: Any, **overrides: Any) -> dict[str, float]:
    body = {"dataset_name": "PENGUIN", "query_str": COUNT, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {},
            "postprocess": True, **overrides}  # fmt: skip
    accepted = submit(api, "estimate_smartnoise_sql_cost", body)
    status = api.get(f"/api/status/{accepted.json()['uid']}")
    assert status.status_code == 200, status.content
    return status.json()["result"]


def _frame_lookups() -> float:
    """Every lookup of PENGUIN's private data in the dataset cache (hits and misses)."""
    return sum(
        REGISTRY.get_sample_value("lomas_dataset_cache_events_total", {"dataset": "PENGUIN", "event": event}) or 0.0
        for event in ("hit", "miss")
    )


def _costings(spans: Any) -> int:
    return sum(span.name == "adapter.cost" for span in spans.get_finished_spans())


def test_an_estimate_never_reads_the_private_data(alice_api, submit, _data_dir):
    lookups = _frame_lookups()
    first = _estimate(alice_api, submit)
    data_file = _data_dir / "penguin.csv"
    rows = data_file.read_text().splitlines(keepends=True)
    data_file.unlink()
    data_file.write_text("".join(rows[:10]))  # the data owner replaces the file
    assert _estimate(alice_api, submit, epsilon=2.0) == {**first, "epsilon": 2.0}
    assert _frame_lookups() == lookups


def test_a_repeated_estimate_is_not_costed_again(alice_api, submit, spans):
    first = _estimate(alice_api, submit)
    assert _costings(spans) == 1
    assert _estimate(alice_api, submit) == first
    assert _costings(spans) == 1


def test_another_researchers_identical_estimate_is_costed_anew(alice_api, submit, spans, penguin, bob):
    """The cache must not tell Bob, by its speed, that Alice asked the same thing."""
    budget_grant(user=bob, dataset=penguin, epsilon=10, delta=0.001)
    first = _estimate(alice_api, submit)
    assert _estimate(api_client_for(bob), submit) == first
    assert _costings(spans) == 2


def test_another_request_or_changed_metadata_is_costed_anew(alice_api, submit, spans, penguin):
    assert _estimate(alice_api, submit)["epsilon"] == 1.0
    assert _estimate(alice_api, submit, epsilon=2.0)["epsilon"] == 2.0
    assert _costings(spans) == 2
    dataset_set_metadata(dataset=penguin, metadata={**penguin.metadata, "maxLength": 400})
    assert _estimate(alice_api, submit)["epsilon"] == 1.0
    assert _costings(spans) == 3
