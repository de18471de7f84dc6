"""Crash resistance on a live stack (PostgreSQL, Redis, a Celery worker, gunicorn).

A worker killed with SIGKILL in the middle of a real query, on the private data: its job
fails (500) within a bound, is charged its cost exactly once (the failure may depend on the
data), and the user queries again; with the default settings, a whole worker's process group
killed at once frees its job and its user within 60 s, while a query that runs longer than
its lease keeps it as long as its worker lives (the heartbeat). The job broker or the database
going away and coming back: submissions answer 503 in the lomas shape, then work again
without any restart. The broker and the database are reached through TCP proxies the
tests cut and restore; the shared Redis and PostgreSQL are never stopped.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests

from tests.integration.conftest import BROKER_URL, ROOT, LiveStack, _free_port, start_stack

USER, PASSWORD = "crash_researcher", "crash-researcher-pw"
# What a dead worker may cost its user with the default settings (LOMAS_QUERY_LEASE_SECONDS 30).
FREED_WITHIN_SECONDS = 60
LOST = {"type": "InternalServerException"}
COUNT = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
         "mechanisms": {}, "postprocess": True}  # fmt: skip
# A real query that runs for tens of seconds even on a fast machine: a GAN synthesizer trained for
# many epochs (this stack allows more than the default LOMAS_SYNTH_MAX_EPOCHS). dpctgan trains as many
# epochs as its epsilon affords: with sigma 100, all 3000 fit in epsilon 1 on PENGUIN's 344 rows.
SLOW_EPOCHS = 3000
SLOW = {"dataset_name": "PENGUIN", "synth_name": "dpctgan", "epsilon": 1.0, "delta": 1e-5, "select_cols": [],
        "synth_params": {"epochs": SLOW_EPOCHS, "batch_size": 50, "sigma": 100.0}, "nullable": False,
        "constraints": "", "return_model": False, "condition": "", "nb_samples": 10}  # fmt: skip
# A real query that runs longer than two leases of its stack (an aim fit of many rounds).
LONG_QUERY_LEASE_SECONDS = 3
LONG = {**SLOW, "synth_name": "aim", "select_cols": ["species", "island", "sex", "flipper_length_mm"],
        "synth_params": {"rounds": 40}}  # fmt: skip
# A job's memory allowance on the memory stack (room for the libraries' thread pools), and a dummy
# query whose rows need more.
JOB_MEMORY_MB = 512
BIG_DUMMY_ROWS = 5_000_000
BIG_DUMMY = {**COUNT, "dummy_nb_rows": BIG_DUMMY_ROWS, "dummy_seed": 1}


class TcpProxy:
    """A localhost TCP proxy that can be cut (listener and every connection closed) and restored."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = threading.Event()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(128)
        server.settimeout(0.1)
        self._running.set()
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        self._running.clear()
        time.sleep(0.3)  # the accept loop closes the listener
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            _close(connection)

    def _accept(self, server: socket.socket) -> None:
        with server:
            while self._running.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                try:
                    upstream = socket.create_connection(self.upstream, timeout=3)
                except OSError:
                    _close(client)
                    continue
                client.settimeout(None)
                upstream.settimeout(None)
                with self._lock:
                    self._connections |= {client, upstream}
                for source, target in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(source, target), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


@pytest.fixture(scope="module")
def broker_proxy() -> Iterator[TcpProxy]:
    parts = urlsplit(BROKER_URL)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    proxy.start()
    yield proxy
    proxy.stop()


def _start_worker(stack: LiveStack, *, concurrency: int = 1) -> subprocess.Popen:
    """The stack's worker, first of its processes, in a process group of its own (as `make worker` runs)."""
    command = [sys.executable, "-m", "celery", "-A", "lomas", "worker", "--hostname", "worker0@%h", "--queues",
               ",".join(f"{stack.env['LOMAS_QUEUE_PREFIX']}{kind}" for kind in ("query", "dummy", "cost")),
               "--concurrency", str(concurrency), "--loglevel", "INFO",
               "--without-gossip", "--without-mingle"]  # fmt: skip
    log = Path(stack.env["LOMAS_VAR_DIR"]) / "logs" / "worker0.log"
    ready_before = log.read_text().count(" ready.") if log.exists() else 0
    with log.open("a") as output:
        worker = subprocess.Popen(
            command, cwd=ROOT, env=stack.env, stdout=output, stderr=subprocess.STDOUT, process_group=0
        )
    stack.processes.insert(0, worker)
    deadline = time.monotonic() + 300  # a busy test machine takes minutes to load the DP libraries
    while log.read_text().count(" ready.") == ready_before:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        time.sleep(0.2)
    return worker


def _crash_stack(tmp_path_factory: pytest.TempPathFactory, name: str, extra_env: dict[str, str], concurrency: int):
    """A stack of its own, with one worker of `concurrency` pool processes started by the test."""
    with start_stack(
        tmp_path_factory.mktemp(name), extra_env={"LOMAS_SYNTH_MAX_EPOCHS": str(SLOW_EPOCHS), **extra_env},
        celery_workers=0, web_workers=1,
    ) as stack:  # fmt: skip
        _start_worker(stack, concurrency=concurrency)
        stack.add_researchers({USER: (PASSWORD, {"PENGUIN": (10, 0.005)})})
        try:
            yield stack
        finally:
            log = Path(stack.env["LOMAS_VAR_DIR"]) / "logs" / "worker0.log"
            sys.stdout.write(f"\n--- worker0 log (tail) ---\n{log.read_text()[-3000:]}\n")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker_proxy: TcpProxy) -> Iterator[LiveStack]:
    """A stack with the default leases: one worker with one pool process, its broker behind the proxy."""
    proxied = urlunsplit(urlsplit(BROKER_URL)._replace(netloc=f"127.0.0.1:{broker_proxy.port}", path="/11"))
    # The cache (submit limits) stays reachable, so that a submission gets as far as publishing its job.
    cache = urlunsplit(urlsplit(BROKER_URL)._replace(path="/11"))
    yield from _crash_stack(
        tmp_path_factory, "crash-var", {"CELERY_BROKER_URL": proxied, "LOMAS_CACHE_URL": cache}, concurrency=1
    )


@pytest.fixture(scope="module")
def token(stack: LiveStack) -> str:
    return stack.token(USER, PASSWORD)


def _wait_reading_private_data(stack: LiveStack, uid: str, timeout: float = 60) -> Decimal:
    """Once the job runs on the private data (its twin checks done): the epsilon it will be charged."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as conn:
        while time.monotonic() < deadline:
            (cost,) = conn.execute("SELECT private_run_cost FROM queries_job WHERE uid = %s", [uid]).fetchone()
            if cost is not None:
                return Decimal(str(cost["epsilon"]))
            time.sleep(0.2)
    raise TimeoutError(f"job {uid} did not reach the private data")


# Charges of earlier tests: the ledger forgets nothing, so _reset_budget sets them aside instead.
_EARLIER_CHARGES: set = set()


def _all_charges(stack: LiveStack) -> list[tuple]:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return conn.execute(
            "SELECT l.job_uid, l.epsilon FROM budgets_ledgerentry l JOIN budgets_budget b ON b.id = l.budget_id "
            "JOIN accounts_user u ON u.id = b.user_id WHERE u.username = %s AND l.kind = 'charge' ORDER BY l.id",
            [USER],
        ).fetchall()


def _charges(stack: LiveStack) -> list[tuple]:
    """The test researcher's charges since the last _reset_budget."""
    return [(job_uid, epsilon) for job_uid, epsilon in _all_charges(stack) if job_uid not in _EARLIER_CHARGES]


def _jobs_in_progress(stack: LiveStack) -> int:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return conn.execute("SELECT COUNT(*) FROM queries_job WHERE status = 'in_progress'").fetchone()[0]


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _submit(stack: LiveStack, token: str, route: str, body: dict) -> str:
    accepted = stack.post(route, token, body)
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["uid"]


def _assert_killed_job_failed_and_charged_once(
    stack: LiveStack, token: str, uid: str, epsilon: Decimal, *, within: float
) -> float:
    started = time.monotonic()
    failed = stack.wait_job(uid, token, timeout=within)
    elapsed = time.monotonic() - started
    assert failed.status_code == 500
    assert (failed.json()["status"], failed.json()["error"]) == ("failed", LOST)
    assert [(str(job_uid), spent) for job_uid, spent in _charges(stack)] == [(uid, epsilon)]
    spent = stack.post("get_total_spent_budget", token, {"dataset_name": "PENGUIN"}).json()
    assert spent["total_spent_epsilon"] == pytest.approx(float(sum(e for _, e in _all_charges(stack))))
    return elapsed


def _assert_next_query_runs_and_is_charged_once(stack: LiveStack, token: str, killed: str) -> None:
    uid = _submit(stack, token, "smartnoise_sql_query", COUNT)
    done = stack.wait_job(uid, token, timeout=120)
    assert done.status_code == 200, done.text
    charged = sorted(str(job_uid) for job_uid, _ in _charges(stack))
    assert charged == sorted([killed, uid])


def _reset_budget(stack: LiveStack) -> None:
    """Start each test with budget to spare (a top-up through the services) and no charge of its own."""
    stack.manage(
        "shell",
        "-c",
        "from accounts.selectors import user_get_by_name\n"
        "from budgets.services import budget_top_up\n"
        "from datasets.models import Dataset\n"
        f"user = user_get_by_name(username={USER!r})\n"
        "penguin = Dataset.objects.get(name='PENGUIN')\n"
        "budget_top_up(actor='test', user=user, dataset=penguin, epsilon=10, delta=0.005)\n",
    )
    _EARLIER_CHARGES.update(job_uid for job_uid, _ in _all_charges(stack))


def test_a_pool_process_killed_mid_query_fails_its_job_at_once(stack, token):
    # given a slow real query running in the worker's only pool process
    uid = _submit(stack, token, "smartnoise_synth_query", SLOW)
    epsilon = _wait_reading_private_data(stack, uid)
    time.sleep(1)
    [pool_process] = _children(stack.processes[0].pid)
    # when that process is killed
    os.kill(pool_process, signal.SIGKILL)
    # then the job fails long before its lease would run out, is charged once, and the user queries again
    elapsed = _assert_killed_job_failed_and_charged_once(stack, token, uid, epsilon, within=20)
    sys.stdout.write(f"\njob of a killed pool process failed {elapsed:.1f} s after the kill\n")
    _assert_next_query_runs_and_is_charged_once(stack, token, uid)


def _slot_lease_left(stack: LiveStack) -> float:
    """Seconds until the user's query slot is free again on its own (its lease runs out)."""
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        (left,) = conn.execute(
            "SELECT EXTRACT(EPOCH FROM p.query_lease_until - now()) FROM accounts_lomasprofile p "
            "JOIN accounts_user u ON u.id = p.user_id WHERE u.username = %s",
            [USER],
        ).fetchone()
    return float(left)


def test_a_whole_worker_killed_mid_query_frees_its_job_and_its_user_within_a_minute(stack, token):
    # given a slow real query on the private data, with the default lease settings
    _reset_budget(stack)
    uid = _submit(stack, token, "smartnoise_synth_query", SLOW)
    epsilon = _wait_reading_private_data(stack, uid)
    time.sleep(1)
    worker = stack.processes.pop(0)
    # when the worker's whole process group is killed at once, and a new worker is started
    os.killpg(worker.pid, signal.SIGKILL)
    killed = time.monotonic()
    worker.wait()
    assert _slot_lease_left(stack) <= 30  # the user's slot frees itself: no half-hour wait
    _start_worker(stack)
    # then the job reports failed (500, charged once: it had read private data) ...
    _assert_killed_job_failed_and_charged_once(stack, token, uid, epsilon, within=FREED_WITHIN_SECONDS)
    failed_after = time.monotonic() - killed
    # ... and the user's next real query runs, both within a minute of the kill
    _assert_next_query_runs_and_is_charged_once(stack, token, uid)
    queried_after = time.monotonic() - killed
    sys.stdout.write(
        f"\nwhole worker killed (default lease): job failed {failed_after:.1f} s after the kill, "
        f"the user's next query completed {queried_after:.1f} s after it\n"
    )
    assert failed_after <= FREED_WITHIN_SECONDS
    assert queried_after <= FREED_WITHIN_SECONDS


@pytest.fixture(scope="module")
def short_lease_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A stack whose leases last LONG_QUERY_LEASE_SECONDS, with two pool processes."""
    env = {"LOMAS_QUERY_LEASE_SECONDS": str(LONG_QUERY_LEASE_SECONDS), "LOMAS_STATUS_WAIT_SECONDS": "1"}
    yield from _crash_stack(tmp_path_factory, "short-lease-var", env, concurrency=2)


def test_a_query_longer_than_its_lease_completes_while_its_worker_lives(short_lease_stack):
    stack = short_lease_stack
    token = stack.token(USER, PASSWORD)
    # given a real query that runs longer than its lease (every status poll fails a job past its lease)
    submitted = time.monotonic()
    uid = _submit(stack, token, "smartnoise_synth_query", LONG)
    _wait_reading_private_data(stack, uid)
    time.sleep(LONG_QUERY_LEASE_SECONDS + 1)  # past the lease it started with
    # then a second real query is still refused: the first one's lease on the user's slot is renewed
    second = stack.wait_job(_submit(stack, token, "smartnoise_sql_query", COUNT), token, timeout=120)
    assert second.status_code == 403, second.text
    assert second.json()["error"]["message"] == f"User {USER} is trying to query before end of previous query."
    # and the long query completes with its result, charged once
    done = stack.wait_job(uid, token, timeout=900)
    seconds = time.monotonic() - submitted
    assert done.status_code == 200, done.text
    assert done.json()["result"]["result"]["df_samples"]
    sys.stdout.write(f"\nquery of {seconds:.1f} s completed under a lease of {LONG_QUERY_LEASE_SECONDS} s\n")
    assert seconds > 2 * LONG_QUERY_LEASE_SECONDS
    assert [str(job_uid) for job_uid, _ in _charges(stack)] == [uid]


@pytest.fixture(scope="module")
def memory_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A stack whose jobs may each grow their worker process by JOB_MEMORY_MB."""
    env = {"LOMAS_JOB_MEMORY_MB": str(JOB_MEMORY_MB), "LOMAS_DUMMY_MAX_ROWS": str(BIG_DUMMY_ROWS)}
    yield from _crash_stack(tmp_path_factory, "memory-var", env, concurrency=1)


def test_a_job_past_its_memory_limit_fails_400_uncharged_and_its_worker_goes_on(memory_stack):
    stack = memory_stack
    token = stack.token(USER, PASSWORD)
    # given a dummy query whose dummy rows need more memory than a job may take
    failed = stack.wait_job(_submit(stack, token, "dummy_smartnoise_sql_query", BIG_DUMMY), token)
    # then it fails with the memory limit's message, before any private data: nothing charged
    assert failed.status_code == 400, failed.text
    assert failed.json()["error"] == {
        "type": "InvalidQueryException",
        "message": f"The job exceeded the memory limit of {JOB_MEMORY_MB} MiB and was stopped; nothing was charged. "
        "Ask for less work (fewer rows, samples, groups or parameters).",
    }
    assert _charges(stack) == []
    # and the same worker process runs the next job, a real query within the limit, charged once
    [pool_process] = _children(stack.processes[0].pid)
    done = stack.wait_job(_submit(stack, token, "smartnoise_sql_query", COUNT), token)
    assert done.status_code == 200, done.text
    assert _children(stack.processes[0].pid) == [pool_process]
    assert len(_charges(stack)) == 1


def _eventually(call, predicate, timeout: float) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if predicate(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_a_lost_broker_answers_503_and_submissions_work_again_once_it_is_back(stack, token, broker_proxy):
    _reset_budget(stack)
    broker_proxy.stop()
    try:
        started = time.monotonic()
        refused = stack.post("smartnoise_sql_query", token, COUNT)
        waited = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.json() == LOST
        assert waited < 15
        assert stack.get("health", None).json()["broker"] == "down"
        assert _jobs_in_progress(stack) == 0  # the job that could not be queued failed
        sys.stdout.write(f"\nsubmission with the broker down answered 503 in {waited:.1f} s\n")
    finally:
        broker_proxy.start()
    accepted = _eventually(lambda: stack.post("smartnoise_sql_query", token, COUNT), lambda r: r.ok, timeout=30)
    assert accepted.status_code == 202, accepted.text
    done = stack.wait_job(accepted.json()["uid"], token, timeout=120)
    assert done.status_code == 200, done.text
    assert [(str(job_uid), epsilon) for job_uid, epsilon in _charges(stack)] == [(accepted.json()["uid"], Decimal(1))]


def test_a_lost_database_answers_503_and_the_server_works_again_once_it_is_back(stack, token, tmp_path):
    _reset_budget(stack)
    database = urlsplit(stack.env["DATABASE_URL"])
    proxy = TcpProxy((database.hostname or "127.0.0.1", database.port or 5432))
    proxy.start()
    # a web server of its own whose database is behind the proxy (same database, broker and worker)
    proxied = urlunsplit(database._replace(netloc=f"{database.username}@127.0.0.1:{proxy.port}"))
    port = _free_port()
    web = LiveStack(base_url=f"http://127.0.0.1:{port}", env={**stack.env, "DATABASE_URL": proxied})
    command = [sys.executable, "-m", "gunicorn", "lomas.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
               "--threads", "4", "--timeout", "60"]  # fmt: skip
    server = web.start_process("web-db-proxy", command, Path(stack.env["LOMAS_VAR_DIR"]) / "logs")
    try:
        assert _eventually(lambda: _get(web, "health"), lambda r: r is not None and r.ok, timeout=60).ok
        proxy.stop()
        refused = web.post("smartnoise_sql_query", token, COUNT)
        assert refused.status_code == 503, refused.text
        assert refused.json() == LOST
        assert web.get("health", None).status_code == 503
        proxy.start()
        accepted = _eventually(lambda: web.post("smartnoise_sql_query", token, COUNT), lambda r: r.ok, timeout=30)
        assert accepted.status_code == 202, accepted.text
        done = web.wait_job(accepted.json()["uid"], token, timeout=120)
        assert done.status_code == 200, done.text
    finally:
        server.terminate()
        server.wait(timeout=20)
        proxy.stop()


def _get(stack: LiveStack, route: str) -> requests.Response | None:
    try:
        return stack.get(route, None)
    except requests.RequestException:
        return None
