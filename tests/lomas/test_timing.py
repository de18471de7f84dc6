"""Timing protection of DP submissions and job results: the answer-time distribution of each mode.

Behaviour tests with small magnitudes and generous bounds (the machine is shared): each asserts
what would break if the mode did nothing, not how fast the server is.
"""

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from lomas.timing import next_boundary
from queries.models import Job

pytestmark = pytest.mark.django_db

SQL_COST = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True}  # fmt: skip
# Scheduling noise allowed on top of the padding.
SLACK = 0.15


def _timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """The call's answer, how long it took, and the wall-clock instant it returned."""
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started, time.time()


@pytest.fixture
def protect(settings: Any, submit_and_run: Callable[..., Any]) -> Callable[[str, float], None]:
    """Switch a protection on, after one unprotected submission has loaded the dataset and the library."""
    settings.LOMAS_SUBMIT_LIMIT = 0
    settings.LOMAS_TIME_ATTACK_METHOD = ""
    assert submit_and_run()[0].status_code == 202

    def _protect(method: str, magnitude: float) -> None:
        settings.LOMAS_TIME_ATTACK_METHOD = method
        settings.LOMAS_TIME_ATTACK_MAGNITUDE = magnitude

    return _protect


@pytest.fixture
def submit_and_run(alice_api: Any, django_capture_on_commit_callbacks: Any) -> Callable[..., tuple[Any, float, float]]:
    """Time a submission's answer; its job runs (eagerly) only after the answer was measured."""

    def _submit(route: str = "estimate_smartnoise_sql_cost", body: dict[str, Any] | None = None) -> Any:
        with django_capture_on_commit_callbacks() as callbacks:
            answer = _timed(lambda: alice_api.post(f"/api/{route}", body or SQL_COST, format="json"))
        for callback in callbacks:
            callback()
        return answer

    return _submit


def test_stall_answers_submissions_no_sooner_than_the_magnitude(protect, submit_and_run):
    protect("stall", 0.2)
    submissions = [submit_and_run() for _ in range(4)]
    refused = submit_and_run(body={**SQL_COST, "dataset_name": "MOON"})
    assert refused[0].status_code == 400
    assert [answer.status_code for answer, *_ in submissions] == [202] * 4
    assert all(elapsed >= 0.2 for _, elapsed, _ in [*submissions, refused])


def test_stall_releases_a_result_no_sooner_than_the_magnitude_after_submission(protect, alice, penguin, alice_api):
    from queries.services import job_complete

    protect("stall", 0.5)
    for _ in range(3):
        job = Job.objects.create(user=alice, dataset=penguin, library="smartnoise_sql", kind="cost", request={})
        job_complete(job=job, result={"epsilon": 1.0, "delta": 0.0})
        status, _, released = _timed(lambda: alice_api.get(f"/api/status/{job.uid}"))  # noqa: B023 (called at once)
        assert status.json()["status"] == "complete"
        assert released - job.created_at.timestamp() >= 0.5


def test_jitter_spreads_answers_over_zero_to_the_magnitude(protect, alice_api, submit_and_run):
    protect("jitter", 0.2)
    submissions = [submit_and_run() for _ in range(12)]
    elapsed = [seconds for _, seconds, _ in submissions]
    assert all(seconds < 0.2 + SLACK for seconds in elapsed)
    assert max(elapsed) - min(elapsed) > 0.05
    assert statistics.pstdev(elapsed) > 0.02
    uids = [answer.json()["uid"] for answer, *_ in submissions]
    results = [_timed(lambda: alice_api.get(f"/api/status/{uid}"))[1] for uid in uids]  # noqa: B023 (called at once)
    assert max(results) - min(results) > 0.05


def test_tick_releases_answers_on_boundaries(protect, alice_api, submit_and_run):
    period = 0.5
    protect("tick", period)
    for _ in range(3):
        answer, _, returned = submit_and_run()
        assert answer.status_code == 202
        # Submissions leave at a multiple of the period since the epoch.
        assert returned % period < SLACK
        job = Job.objects.get(uid=answer.json()["uid"])
        assert job.status == Job.Status.COMPLETE
        time.sleep(0.05)
        status, _, released = _timed(lambda: alice_api.get(f"/api/status/{job.uid}"))  # noqa: B023 (called at once)
        assert status.json()["status"] == "complete"
        # Results leave a whole number of periods after their job was submitted.
        ticks = (released - job.created_at.timestamp()) / period
        assert ticks >= 1
        assert (ticks - int(ticks)) * period < SLACK


@pytest.mark.parametrize(("finished_after", "ticks"), [(0.0, 1), (0.1, 1), (0.99, 1), (1.0, 1), (1.3, 2), (2.5, 3)])
def test_tick_release_is_the_number_of_whole_ticks_the_job_took(finished_after, ticks):
    submitted = 1_000_000.25
    released = next_boundary(now=submitted + finished_after, origin=submitted, period=1.0)
    assert released == pytest.approx(submitted + ticks)


def test_no_method_adds_no_padding(protect, alice_api, submit_and_run):
    protect("", 5.0)
    answer, elapsed, _ = submit_and_run()
    assert answer.status_code == 202
    assert elapsed < 5.0
