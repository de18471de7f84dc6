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


def time_opendp_fso_grouped_mean(user: str, password: str, dataset: str, repeats: int) -> dict:
    """Wall times of real OpenDP releases (mean income by sex, rho and delta), and the plan sent (base64)."""
    import base64

    from scenarios_opendp import LOSS_FSO, fso_grouped_mean

    client = connect(user, password, dataset)
    plan = fso_grouped_mean(client.get_context(**LOSS_FSO).query())
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.opendp.query(plan, **LOSS_FSO)
        times.append(time.perf_counter() - started)
    return {"seconds": times, "opendp_json": base64.b64encode(plan.serialize()).decode()}


def time_diffprivlib_penguin_logistic(user: str, password: str, dataset: str, repeats: int) -> dict:
    """Wall times of real DiffPrivLib fits (scaler + logistic regression), and the pipeline JSON sent."""
    from diffprivlib_logger import serialise_pipeline
    from scenarios_diffprivlib import PIPELINES

    client = connect(user, password, dataset)
    features, targets = ["bill_length_mm", "flipper_length_mm"], ["species"]
    pipeline = PIPELINES["penguin_logistic"](client, features)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.diffprivlib.query(pipeline, feature_columns=features, target_columns=targets)
        times.append(time.perf_counter() - started)
    return {"seconds": times, "diffprivlib_json": serialise_pipeline(pipeline), "features": features,
            "targets": targets}  # fmt: skip
