"""A cost estimate the estimate cache remembers for its user completes at submission, without a worker hop;
any other estimate goes to a worker as before."""

from typing import Any

from budgets.services import budget_grant
from tests.conftest import api_client_for

BODY = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
        "mechanisms": {}}  # fmt: skip


def _runs(spans: Any) -> int:
    return sum(span.name == "job.run" for span in spans.get_finished_spans())


def test_a_remembered_estimate_completes_at_submission(alice_api, submit, spans):
    first = submit(alice_api, "estimate_smartnoise_sql_cost", BODY)
    assert first.json()["status"] == "in_progress"
    expected = alice_api.get(f"/api/status/{first.json()['uid']}").json()["result"]

    again = submit(alice_api, "estimate_smartnoise_sql_cost", BODY)

    assert again.status_code == 202
    assert (again.json()["status"], again.json()["result"]) == ("complete", expected)
    assert _runs(spans) == 1  # only the first went to a worker
    status = alice_api.get(f"/api/status/{again.json()['uid']}")
    assert (status.status_code, status.json()["result"]) == (200, expected)
    assert alice_api.get(f"/api/status/{again.json()['uid']}").status_code == 404  # handed out once


def test_another_researchers_or_another_requests_estimate_goes_to_a_worker(alice_api, submit, spans, penguin, bob):
    budget_grant(user=bob, dataset=penguin, epsilon=10, delta=0.001)
    submit(alice_api, "estimate_smartnoise_sql_cost", BODY)

    for api, body in [(api_client_for(bob), BODY), (alice_api, {**BODY, "epsilon": 2.0})]:
        assert submit(api, "estimate_smartnoise_sql_cost", body).json()["status"] == "in_progress"

    assert _runs(spans) == 3
