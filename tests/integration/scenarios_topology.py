"""Scenarios of the multi-process topology test: researchers using lomas-client 0.5.1."""

import time
from typing import Any

import opendp.prelude as dp
from client_session import connect
from diffprivlib import models
from sklearn.pipeline import Pipeline

COUNT = "SELECT COUNT(*) AS n FROM df"
GROUPED_COUNT = "SELECT species, COUNT(*) AS n FROM df GROUP BY species"


def _recording_job_uids(client: Any) -> list[str]:
    """Record the uid of every job the client waits for from now on."""
    uids: list[str] = []
    wait_for_job = client.http_client.wait_for_job

    def recording_wait(job_uid: str, *args: Any, **kwargs: Any) -> Any:
        uids.append(job_uid)
        return wait_for_job(job_uid, *args, **kwargs)

    client.http_client.wait_for_job = recording_wait
    return uids


def fast_queries(user: str, password: str, dataset: str, rounds: int) -> dict:
    """Quick cost estimates and real queries, one after the other; their job uids and wall times."""
    client = connect(user, password, dataset)
    uids = _recording_job_uids(client)
    seconds = []
    for _ in range(rounds):
        for call in (
            lambda: client.smartnoise_sql.cost(query=COUNT, epsilon=0.1, delta=1e-6),
            lambda: client.smartnoise_sql.query(query=COUNT, epsilon=0.1, delta=1e-6),
        ):
            started = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - started)
    return {"uids": uids, "seconds": seconds}


def researcher_session(user: str, password: str, dataset: str) -> dict:
    """A researcher's session: explore, estimate, try on dummy data, then real queries with three libraries."""
    client = connect(user, password, dataset)
    client.get_dataset_metadata()
    client.get_dummy_dataset()
    client.smartnoise_sql.cost(query=GROUPED_COUNT, epsilon=0.5, delta=1e-5)
    client.smartnoise_sql.query(query=GROUPED_COUNT, epsilon=0.5, delta=1e-5, dummy=True)
    charged = [client.smartnoise_sql.query(query=GROUPED_COUNT, epsilon=0.5, delta=1e-5) for _ in range(2)]
    plan = client.get_context(epsilon=0.5).query().select(dp.len())
    charged.append(client.opendp.query(plan, epsilon=0.5))
    features = ["bill_length_mm", "flipper_length_mm"]
    pipeline = Pipeline(
        [
            ("scaler", models.StandardScaler(epsilon=0.5, bounds=client.get_diffprivlib_bounds(features))),
            ("classifier", models.LogisticRegression(epsilon=1.0, data_norm=5)),
        ]
    )
    charged.append(client.diffprivlib.query(pipeline, feature_columns=features, target_columns=["species"]))
    spent = client.get_total_spent_budget()
    return {
        "charged": [[response.epsilon, response.delta] for response in charged],
        "spent": [spent.total_spent_epsilon, spent.total_spent_delta],
        "previous_queries": len(client.get_previous_queries()),
    }
