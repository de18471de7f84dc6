"""The submit limit on a live stack: counted in Redis by every web process, read by lomas-client."""

from concurrent.futures import ThreadPoolExecutor

import redis

from tests.integration.conftest import BROKER_URL, start_stack

COUNT = "SELECT COUNT(*) AS n FROM df"
BODY = {"dataset_name": "PENGUIN", "query_str": COUNT, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {}}
LIMIT = 4
PREFIX = "User Dr.Antartica has reached the limit of 4 submissions in 86400 s. Please, retry in "


def test_the_limit_is_shared_by_web_processes_and_lomas_client_reads_the_429(tmp_path):
    extra_env = {"LOMAS_SUBMIT_LIMIT": str(LIMIT), "LOMAS_SUBMIT_LIMIT_WINDOW": "86400"}
    with start_stack(tmp_path / "var", extra_env=extra_env, celery_workers=1, concurrency=1, web_workers=3) as stack:
        token = stack.token("Dr.Antartica", "dr.antartica")
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: stack.post("estimate_smartnoise_sql_cost", token, BODY), range(12)))
        assert sorted(answer.status_code for answer in answers) == [202] * LIMIT + [429] * (12 - LIMIT)
        for answer in answers:
            if answer.status_code == 429:
                assert answer.json()["type"] == "UnauthorizedAccessException"
                assert answer.json()["message"].startswith(PREFIX)
        # One counter in Redis for all web processes (and hosts): every submission went into it.
        keys = redis.Redis.from_url(BROKER_URL).keys(f"lomas:{stack.env['LOMAS_QUEUE_PREFIX']}:*submit-limit:*")
        assert len(keys) == 1
        assert int(redis.Redis.from_url(BROKER_URL).get(keys[0])) == 12

        refused = stack.client(
            "scenarios_abuse:cost_estimate",
            user="Dr.Antartica",
            password="dr.antartica",
            dataset="PENGUIN",
            query=COUNT,
        )
        assert refused["error"] == "UnauthorizedAccessException"
        assert PREFIX in refused["message"]
