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
    live_stack.manage(
        "shell",
        "-c",
        "from accounts.services import user_create\n"
        "from budgets.services import budget_grant\n"
        "from datasets.models import Dataset\n"
        "penguin = Dataset.objects.get(name='PENGUIN')\n"
        f"for name in {names!r}:\n"
        "    budget_grant(user=user_create(username=name, password=name + '-pw'), dataset=penguin,"
        " epsilon=2.5, delta=0.001)\n",
    )
    return {name: live_stack.token(name, f"{name}-pw") for name in names}


def _submit_and_wait(live_stack, token):
    body = {"dataset_name": "PENGUIN", "query_str": COUNT, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {},
            "postprocess": True}  # fmt: skip
    accepted = live_stack.post("smartnoise_sql_query", token, body)
    assert accepted.status_code == 202, accepted.text
    return live_stack.wait_job(accepted.json()["uid"], token).json()


def _budgets(live_stack):
    with psycopg.connect(live_stack.env["DATABASE_URL"]) as conn:
        return conn.execute(
            """
            SELECT u.username, b.initial_epsilon, b.spent_epsilon, b.initial_delta, b.spent_delta,
                   COALESCE(SUM(l.epsilon), 0), COALESCE(SUM(l.delta), 0)
            FROM budgets_budget b
            JOIN accounts_user u ON u.id = b.user_id
            LEFT JOIN budgets_ledgerentry l ON l.budget_id = b.id
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
    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(lambda _: _submit_and_wait(live_stack, token), range(30)))
    complete = [o for o in outcomes if o["status"] == "complete"]
    refused = [o["error"] for o in outcomes if o["status"] == "failed"]
    assert 1 <= len(complete) <= 2
    assert all(
        e["message"] == BUSY.format(user="researcher0") or e["message"].startswith("Not enough budget") for e in refused
    )
    assert any(e["message"] == BUSY.format(user="researcher0") for e in refused)
    _assert_budgets_consistent(live_stack)
    # The user can query again: the lock was always released.
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
