"""Benchmark scenarios: what a researcher using lomas-client 0.5.1 sees, timed, and the exact
request bodies the client sends (replayed in-process and by the load generators)."""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import opendp.prelude as dp
import polars as pl
from client_session import connect
from lomas_client import Client
from scenarios_diffprivlib import PIPELINES
from scenarios_opendp import LOSS_FSO, fso_grouped_mean

Release = Callable[[Client], Callable[[], Any]]


def _opendp(plan: Callable[[Any], Any], loss: dict[str, float]) -> Release:
    def build(client: Client) -> Callable[[], Any]:
        query = plan(client.get_context(**loss).query())
        return lambda: client.opendp.query(query, **loss)

    return build


def _diffprivlib(features: list[str], targets: list[str]) -> Release:
    def build(client: Client) -> Callable[[], Any]:
        pipeline = PIPELINES["penguin_logistic"](client, features)
        return lambda: client.diffprivlib.query(pipeline, feature_columns=features, target_columns=targets)

    return build


def _sql(query: str, epsilon: float, delta: float) -> Release:
    def build(client: Client) -> Callable[[], Any]:
        return lambda: client.smartnoise_sql.query(query=query, epsilon=epsilon, delta=delta)

    return build


def _penguin_two_means(query: Any) -> Any:
    """Mean bill length and mean flipper length by species."""
    return query.group_by("species").agg(
        pl.col("bill_length_mm").fill_null(45.0).dp.mean((30.0, 65.0)),
        pl.col("flipper_length_mm").fill_null(200.0).dp.mean((150.0, 250.0)),
    )


# The lomas-bench releases, by name: each builds, on a signed-in client, the call of one real query.
RELEASES: dict[str, Release] = {
    "opendp_penguin_length": _opendp(lambda query: query.select(dp.len()), {"epsilon": 1.0}),
    "opendp_penguin_two_means": _opendp(_penguin_two_means, {"rho": 0.5, "delta": 1e-6}),
    "opendp_fso_grouped_mean": _opendp(fso_grouped_mean, LOSS_FSO),
    "diffprivlib_penguin_logistic": _diffprivlib(["bill_length_mm", "flipper_length_mm"], ["species"]),
    "diffprivlib_fso_logistic": _diffprivlib(["age", "income"], ["sex"]),
    "sql_penguin_grouped_count": _sql("SELECT species, COUNT(*) AS n FROM df GROUP BY species", 0.5, 1e-5),
    "sql_fso_grouped_mean": _sql("SELECT sex, AVG(income) AS mean_income FROM df GROUP BY sex", 0.5, 1e-8),
}


def _recording(client: Client) -> list[tuple[str, dict]]:
    """Record (route, JSON body) of every request the client POSTs from now on."""
    sent: list[tuple[str, dict]] = []
    post = client.http_client.post

    def recording_post(endpoint: str, body: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append((endpoint, body.model_dump()))
        return post(endpoint, body, *args, **kwargs)

    client.http_client.post = recording_post
    return sent


def time_release(user: str, password: str, dataset: str, release: str, repeats: int) -> dict:
    """Wall times of `repeats` real runs of one release as the client sees them, and what it sent."""
    client = connect(user, password, dataset)
    run = RELEASES[release](client)
    sent = _recording(client)
    times = time_runs(run, repeats)
    route, body = sent[-1]
    return {"seconds": times, "route": route, "body": body}


def time_first_and_warm(user: str, password: str, dataset: str, release: str, repeats: int, handshake: str) -> dict:
    """As time_release, with the first timed run on a fresh pool: the client runs the release once (its own
    first use, untimed), writes `handshake`/warm, and waits for `handshake`/fresh, which the harness writes
    once it has replaced the worker's pool processes; then it times one run, then `repeats` more."""
    client = connect(user, password, dataset)
    run = RELEASES[release](client)
    run()
    folder = Path(handshake)
    (folder / "warm").touch()
    deadline = time.monotonic() + 600
    while not (folder / "fresh").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the pool was not replaced in time")
        time.sleep(0.05)
    [first] = time_runs(run, 1)
    return {"first": first, "seconds": time_runs(run, repeats)}


def time_runs(run: Callable[[], Any], repeats: int) -> list[float]:
    """Wall times of `repeats` calls of `run`."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def request_bodies(user: str, password: str, releases: dict[str, str]) -> dict:
    """The (route, body) lomas-client sends for each release, {name: dataset}, recorded while running it once."""
    bodies = {}
    for release, dataset in releases.items():
        client = connect(user, password, dataset)
        run = RELEASES[release](client)
        sent = _recording(client)
        run()
        bodies[release] = {"route": sent[-1][0], "body": sent[-1][1]}
    return bodies


def cost_estimate_throughput(
    users: list[list[str]], dataset: str, query: str, epsilon: float, delta: float, per_user: int
) -> dict:
    """Each user (one client, one thread) asks `per_user` SmartNoise-SQL cost estimates at once with the others."""
    clients = [connect(user, password, dataset) for user, password in users]
    for client in clients:  # signed in and warm before the clock starts
        client.smartnoise_sql.cost(query=query, epsilon=epsilon, delta=delta)

    def estimates(client: Client) -> None:
        for _ in range(per_user):
            client.smartnoise_sql.cost(query=query, epsilon=epsilon, delta=delta)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(estimates, clients))
    return {"requests": len(clients) * per_user, "seconds": time.perf_counter() - started}
