"""Benchmark scenarios: wall times seen by a researcher using lomas-client 0.5.1."""

import time

from client_session import connect


def time_sql_queries(
    user: str, password: str, dataset: str, query: str, epsilon: float, delta: float, repeats: int
) -> dict:
    """Wall time of each of `repeats` real SmartNoise-SQL queries, as the client sees it."""
    client = connect(user, password, dataset)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.smartnoise_sql.query(query=query, epsilon=epsilon, delta=delta)
        times.append(time.perf_counter() - started)
    return {"seconds": times}
