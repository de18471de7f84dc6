"""A worker process keeps its PostgreSQL connection from one job to the next, as a web process does from
one request to the next: Celery alone would open and close one around every job (about 10 ms each). A new
pool process opens it as it starts, so that its first job does not wait for it either."""

import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

USER, PASSWORD = "connections_researcher", "connections-researcher-pw"
COUNT = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 0.1, "delta": 1e-5,
         "mechanisms": {}, "postprocess": True}  # fmt: skip


def database_sockets(pids: list[int], port: int) -> set[int]:
    """The inodes of the TCP sockets that these processes hold open to the database's port."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = str(fd.readlink()) if fd.is_symlink() else ""
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    connected = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port, state, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[3], int(fields[9])
            if remote_port == port and state == "01" and inode in inodes:  # 01: established
                connected.add(inode)
    return connected


def test_a_worker_process_keeps_its_database_connection_from_one_job_to_the_next(live_stack):
    live_stack.add_researchers({USER: (PASSWORD, {"PENGUIN": (10, 0.001)})})
    token = live_stack.token(USER, PASSWORD)
    port = urlsplit(live_stack.env["DATABASE_URL"]).port or 5432

    def query() -> None:
        accepted = live_stack.post("smartnoise_sql_query", token, COUNT)
        assert accepted.status_code == 202, accepted.text
        assert live_stack.wait_job(accepted.json()["uid"], token).json()["status"] == "complete"

    query()
    after_first = database_sockets(live_stack.pool_processes(), port)
    for _ in range(6):
        query()
    after_all = database_sockets(live_stack.pool_processes(), port)

    assert after_first, "the pool processes closed their database connections after the job"
    assert after_first <= after_all, "a connection open after the first job was closed by the later ones"
    assert len(after_all) <= len(live_stack.pool_processes())  # one per pool process at most


def test_a_new_pool_process_connects_to_the_database_before_its_first_job(live_stack):
    port = urlsplit(live_stack.env["DATABASE_URL"]).port or 5432
    old = live_stack.pool_processes()
    # when a pool process dies, the worker forks a new one
    os.kill(old[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    new: list[int] = []
    while time.monotonic() < deadline and not (new and database_sockets(new, port)):
        time.sleep(0.2)
        new = [pid for pid in live_stack.pool_processes() if pid not in old]
    # then the new process holds a database connection before any job reached it
    assert new, "the worker did not replace its pool process"
    assert database_sockets(new, port), "the new pool process has no database connection before its first job"
