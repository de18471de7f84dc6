"""A job's end wakes the status request waiting for it through Redis (lomas.notify), instead of
leaving it asleep until its next poll."""

import threading
import time
from typing import Any

import pytest
import redis
from django.db import connection

from lomas import notify
from queries.models import Job
from queries.services import job_complete
from queries.views import JobStatusApi
from tests.integration.conftest import BROKER_URL

POLL_SECONDS = 30  # a status request that only polled would answer after this


@pytest.fixture
def redis_cache(settings: Any) -> str:
    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {BROKER_URL} is required: {exc}")
    settings.LOMAS_CACHE_URL = BROKER_URL
    return BROKER_URL


def test_a_wake_up_is_received_once_and_a_missing_one_times_out(redis_cache: str) -> None:
    notify.wake("test:once")
    assert notify.wait("test:once", timeout=5) is True
    assert notify.wait("test:once", timeout=0.05) is False
    assert notify.wait("test:never", timeout=0.05) is False


def test_a_wake_up_sent_before_the_wait_is_kept(redis_cache: str) -> None:
    notify.wake("test:early")
    ttl = redis.Redis.from_url(redis_cache).ttl("lomas:wake:test:early")
    assert 0 < ttl <= notify.TOKEN_SECONDS
    assert notify.wait("test:early", timeout=5) is True


def test_without_redis_waiting_is_sleeping(settings: Any) -> None:
    settings.LOMAS_CACHE_URL = ""
    notify.wake("test:nowhere")
    assert notify.wait("test:nowhere", timeout=0.01) is False


@pytest.mark.django_db(transaction=True)
def test_the_end_of_a_job_answers_its_waiting_status_request(
    redis_cache: str, settings: Any, alice: Any, alice_api: Any, penguin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LOMAS_STATUS_WAIT_SECONDS = POLL_SECONDS
    monkeypatch.setattr(JobStatusApi, "first_poll_interval", POLL_SECONDS)
    job = Job.objects.create(user=alice, dataset=penguin, library="opendp", kind=Job.Kind.QUERY, request={})

    def finish_later() -> None:
        time.sleep(0.5)
        job_complete(job=job, result={"answer": 42})
        connection.close()

    finisher = threading.Thread(target=finish_later)
    started = time.monotonic()
    finisher.start()
    answer = alice_api.get(f"/api/status/{job.uid}")
    waited = time.monotonic() - started
    finisher.join()

    assert answer.status_code == 200
    assert answer.json()["status"] == "complete" and answer.json()["result"] == {"answer": 42}
    assert waited < POLL_SECONDS / 3, f"the status request answered after {waited:.1f} s, at a poll"
