"""Concurrent real queries on PostgreSQL with a Celery worker: budgets are never
overspent, spent always equals the ledger, one query at a time per user."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest

COUNT = "SELECT COUNT(*) AS n FROM df"
BUSY = "User {user} is trying to query before end of previous query."


@pytest.fixture(scope="module")
def researchers(live_stack):
    """Ten researchers, each with a PENGUIN budget that covers two queries of epsilon 1."""
    names = [f"researcher{i}" for i in range(10)]
    live_stack.add_researchers({name: (f"{name}-pw", {"PENGUIN": (2.5, 0.001)}) for name in names})
    return {name: live_stack.token(name, f"{name}-pw") for name in names}


def _submit(live_stack, token, route="smartnoise_sql_query", body=None):
    body = body or {"dataset_name": "PENGUIN", "query_str": COUNT, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {},
                    "postprocess": True}  # fmt: skip
    accepted = live_stack.post(route, token, body)
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["uid"]


def _submit_and_wait(live_stack, token):
    return live_stack.wait_job(_submit(live_stack, token), token).json()


def _budgets(live_stack):
    with psycopg.connect(live_stack.env["DATABASE_URL"]) as conn:
        return conn.execute(
            """
            SELECT u.username, b.initial_epsilon, b.spent_epsilon, b.initial_delta, b.spent_delta,
                   COALESCE(SUM(l.epsilon), 0), COALESCE(SUM(l.delta), 0)
            FROM budgets_budget b
            JOIN accounts_user u ON u.id = b.user_id
            LEFT JOIN budgets_ledgerentry l ON l.budget_id = b.id AND l.kind <> 'grant'
            GROUP BY u.username, b.id
            """
        ).fetchall()


def _assert_budgets_consistent(live_stack):
    for username, initial_eps, spent_eps, initial_delta, spent_delta, ledger_eps, ledger_delta in _budgets(live_stack):
        assert spent_eps <= initial_eps, username
        assert spent_delta <= initial_delta, username
        assert (spent_eps, spent_delta) == (ledger_eps, ledger_delta), username


def test_thirty_simultaneous_queries_of_one_user(live_stack, researchers):
    token = researchers["researcher0"]
    # given a real query that holds the user's query slot for seconds (a synthesizer fit),
    slow = {"dataset_name": "PENGUIN", "synth_name": "aim", "epsilon": 1.0, "delta": 1e-5,
            "select_cols": ["species", "island", "sex", "flipper_length_mm"], "synth_params": {}, "nullable": False,
            "constraints": "", "return_model": False, "condition": "", "nb_samples": 10}  # fmt: skip
    slow_uid = _submit(live_stack, token, "smartnoise_synth_query", slow)
    # when thirty more real queries of the same user arrive at once (queued behind it),
    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(lambda _: _submit_and_wait(live_stack, token), range(30)))
    # then the ones that ran while another held the slot were refused, and nothing was overspent
    assert live_stack.wait_job(slow_uid, token, timeout=300).json()["status"] == "complete"
    refused = [o["error"]["message"] for o in outcomes if o["status"] == "failed"]
    assert BUSY.format(user="researcher0") in refused
    assert all(m == BUSY.format(user="researcher0") or m.startswith("Not enough budget") for m in refused)
    assert len([o for o in outcomes if o["status"] == "complete"]) <= 1  # 2.5 - 1 (the fit) leaves one query
    _assert_budgets_consistent(live_stack)
    # and the user can query again: the slot was always released.
    last = _submit_and_wait(live_stack, token)
    assert last["status"] == "complete" or last["error"]["message"].startswith("Not enough budget")


def test_thirty_simultaneous_queries_of_ten_users(live_stack, researchers):
    tokens = [token for name, token in researchers.items() if name != "researcher0"] * 4
    tokens = tokens[:30]
    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(lambda token: _submit_and_wait(live_stack, token), tokens))
    assert any(o["status"] == "complete" for o in outcomes)
    for outcome in outcomes:
        if outcome["status"] == "failed":
            message = outcome["error"]["message"]
            assert message.endswith("is trying to query before end of previous query.") or message.startswith(
                "Not enough budget"
            ), message
    _assert_budgets_consistent(live_stack)
    for name, token in researchers.items():
        # Never more than two queries of epsilon 1 on a budget of 2.5, and every user can query again.
        spent = live_stack.post("get_total_spent_budget", token, {"dataset_name": "PENGUIN"}).json()
        assert Decimal(str(spent["total_spent_epsilon"])) <= Decimal("2.5"), name
        again = _submit_and_wait(live_stack, token)
        assert again["status"] == "complete" or again["error"]["message"].startswith("Not enough budget"), name
