"""The deployment topology of docker-compose.yml as processes: gunicorn with 2 workers, 2 Celery
workers, PostgreSQL and Redis, driven by lomas-client researchers in parallel and a load generator."""

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import start_stack
from tests.integration.load_generator import run_load

STATUS_REQUEST = re.compile(r'"GET /api/status/([0-9a-f-]+) HTTP/[\d.]+" (\d{3}) ')
ANY_REQUEST = re.compile(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3}) ')
SQL = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
       "mechanisms": {}, "postprocess": True}  # fmt: skip
LOAD = [("estimate_smartnoise_sql_cost", SQL), ("smartnoise_sql_query", SQL),
        ("dummy_smartnoise_sql_query", {**SQL, "dummy_nb_rows": 100, "dummy_seed": 1})]  # fmt: skip


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    # A status request waits up to 10 s here (1 s by default): on a busy test machine even a PENGUIN
    # count may take longer than a second, and this test is about the mechanism, not the machine.
    var_dir = tmp_path_factory.mktemp("topology")
    wait = {"LOMAS_STATUS_WAIT_SECONDS": "10"}
    with start_stack(var_dir, extra_env=wait, celery_workers=2, web_workers=2, concurrency=2) as stack:
        yield stack


def _log(stack, name: str) -> str:
    return (Path(stack.env["LOMAS_VAR_DIR"]) / "logs" / f"{name}.log").read_text()


def _ledger_and_spent(stack) -> list[tuple]:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return conn.execute(
            """
            SELECT u.username, b.spent_epsilon, b.spent_delta, COALESCE(SUM(l.epsilon), 0),
                   COALESCE(SUM(l.delta), 0), COUNT(l.id), b.initial_epsilon
            FROM budgets_budget b
            JOIN accounts_user u ON u.id = b.user_id
            LEFT JOIN budgets_ledgerentry l ON l.budget_id = b.id AND l.kind <> 'grant'
            GROUP BY u.username, b.id
            """
        ).fetchall()


def _session(stack, user: str, password: str) -> dict:
    return stack.client("scenarios_topology:researcher_session", user=user, password=password, dataset="PENGUIN")


def test_a_fast_query_is_seen_finished_at_the_first_status_request(topology):
    # given a researcher whose queries take milliseconds on the worker,
    topology.add_researchers({"fast_researcher": ("fast-researcher-pw", {"PENGUIN": (10, 0.001)})})
    # when lomas-client runs cost estimates and real queries one after the other,
    seen = topology.client(
        "scenarios_topology:fast_queries", user="fast_researcher", password="fast-researcher-pw", dataset="PENGUIN",
        rounds=3,
    )  # fmt: skip
    # then it asked for each job's status exactly once (the status request waited for the job)
    status_requests = Counter(uid for uid, _ in STATUS_REQUEST.findall(_log(topology, "web")))
    assert len(seen["uids"]) == 6
    assert {uid: status_requests[uid] for uid in seen["uids"]} == dict.fromkeys(seen["uids"], 1)


def test_researchers_and_load_on_two_web_and_two_celery_workers(topology):
    # given researchers driven by lomas-client and others by the load generator,
    researchers = {f"topology_researcher{i}": f"topology-researcher{i}-pw" for i in range(4)}
    loaders = {f"topology_load{i}": f"topology-load{i}-pw" for i in range(6)}
    topology.add_researchers({name: (pw, {"PENGUIN": (50, 0.01)}) for name, pw in {**researchers, **loaders}.items()})
    tokens = [topology.token(name, pw) for name, pw in loaders.items()]
    # when all of them work at once,
    with ThreadPoolExecutor(max_workers=len(researchers) + 1) as pool:
        load = pool.submit(run_load, topology.api, tokens, LOAD, 12)
        sessions = list(pool.map(lambda item: _session(topology, *item), researchers.items()))
        load = load.result()
    # then every load job completed, with no server error,
    assert not load.errors, load.errors[:5]
    assert load.completed == len(tokens) * 12
    assert all(code < 500 for code in load.http_statuses), load.http_statuses
    # every researcher was charged exactly what the releases reported, as their ledger says,
    ledger = {row[0]: row for row in _ledger_and_spent(topology)}
    for name, session in zip(researchers, sessions, strict=True):
        assert len(session["charged"]) == 4 and session["previous_queries"] == 4
        assert session["spent"] == pytest.approx(
            [sum(e for e, _ in session["charged"]), sum(d for _, d in session["charged"])]
        )
        assert ledger[name][5] == 4
    for username, spent_eps, spent_delta, ledger_eps, ledger_delta, _, initial_eps in ledger.values():
        assert (spent_eps, spent_delta) == (ledger_eps, ledger_delta), username
        assert spent_eps <= initial_eps, username
    for name in loaders:
        assert ledger[name][5] == 4  # the 4 real queries of its 12 jobs
    # both Celery workers ran jobs, and no request answered a server error.
    for worker in ("worker0", "worker1"):
        assert re.search(r"Task queries\.job_run\[[0-9a-f-]+\] succeeded", _log(topology, worker)), worker
    server_errors = [(path, code) for path, code in ANY_REQUEST.findall(_log(topology, "web")) if int(code) >= 500]
    assert not server_errors
