"""Costs never read private data: every library's estimate comes from the request and the metadata alone,
and a real query is charged exactly its estimate.

Attack (issue 11, cases 3 and 4): a researcher who can see an estimate move with the private rows (a row
count behind a sampling rate, a fit that fails on too few complete rows) learns those rows for free.
"""

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from csvw_eo.csvw_to_opendp_context import csvw_to_opendp_context
from django.core.cache import cache

from budgets.models import LedgerEntry
from datasets.connectors.dummy import DummyConnector

pytestmark = pytest.mark.django_db

ACCOUNTANT = "_dpl_instance:BudgetAccountant"
PIPELINE = [
    {"type": "_dpl_type:StandardScaler", "name": "scaler",
     "params": {"with_mean": True, "with_std": True, "copy": True, "epsilon": 0.5, "bounds": None,
                "random_state": None, "accountant": ACCOUNTANT}},
    {"type": "_dpl_type:LogisticRegression", "name": "classifier",
     "params": {"C": 1.0, "tol": 0.0001, "fit_intercept": True, "random_state": None, "max_iter": 100, "verbose": 0,
                "warm_start": False, "n_jobs": None, "epsilon": 1.0, "data_norm": 5, "accountant": ACCOUNTANT}},
]  # fmt: skip


def _opendp_plan(metadata: dict[str, Any]) -> str:
    """A grouped mean as lomas-client builds it, on its Context over dummy rows."""
    dummy = DummyConnector(metadata, 100, 42).get_polars()
    context = csvw_to_opendp_context(metadata, dummy, split_evenly_over=1, epsilon=1.0)
    query = context.query().group_by("species").agg(pl.col("bill_length_mm").fill_null(45.0).dp.mean((30.0, 65.0)))
    return base64.b64encode(query.serialize()).decode()


def request_bodies(metadata: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """One request per library: (the library's route suffix, the body)."""
    return {
        "smartnoise_sql": ("smartnoise_sql", {
            "dataset_name": "PENGUIN", "query_str": "SELECT species, AVG(body_mass_g) AS m FROM df GROUP BY species",
            "epsilon": 1.0, "delta": 1e-5, "mechanisms": {}, "postprocess": True}),
        "opendp": ("opendp", {
            "dataset_name": "PENGUIN", "opendp_json": _opendp_plan(metadata), "epsilon": 1.0, "delta": None,
            "rho": None, "approx_zcdp": True}),
        "diffprivlib": ("diffprivlib", {
            "dataset_name": "PENGUIN",
            "diffprivlib_json": json.dumps({"module": "diffprivlib", "version": "0.6.7", "pipeline": PIPELINE}),
            "feature_columns": ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
            "target_columns": ["species"], "test_size": 0.2, "test_train_split_seed": 1,
            "imputer_strategy": "drop"}),
        "smartnoise_synth": ("smartnoise_synth", {
            "dataset_name": "PENGUIN", "synth_name": "dpctgan", "epsilon": 1.0, "delta": 1e-5,
            "select_cols": ["species", "island", "sex", "body_mass_g"],
            "synth_params": {"epochs": 1, "batch_size": 50}, "nullable": True, "constraints": "",
            "return_model": False, "condition": "", "nb_samples": 10}),
    }  # fmt: skip


def _estimate(api: Any, submit: Any, route: str, body: dict[str, Any]) -> dict[str, float]:
    cache.clear()  # a fresh estimate, not the remembered one
    accepted = submit(api, f"estimate_{route}_cost", body)
    assert accepted.status_code == 202, accepted.content
    status = api.get(f"/api/status/{accepted.json()['uid']}")
    assert status.status_code == 200, status.content
    return status.json()["result"]


def _damage(data_dir: Path) -> None:
    """The data owner's file changes: a third of the rows gone, and nulls in every column of the others."""
    path = data_dir / "penguin.csv"
    frame = pd.read_csv(path)
    path.unlink()
    frame = frame.iloc[: len(frame) * 2 // 3].copy()
    rng = np.random.default_rng(7)
    for column in frame.columns:
        frame.loc[rng.random(len(frame)) < 0.2, column] = None
    frame.to_csv(path, index=False)


@pytest.mark.slow
@pytest.mark.parametrize("library", ["smartnoise_sql", "opendp", "diffprivlib", "smartnoise_synth"])
def test_estimates_do_not_move_with_the_private_rows_and_the_charge_equals_the_estimate(
    library, alice, alice_api, penguin, submit, _data_dir
):
    route, body = request_bodies(penguin.metadata)[library]
    before = _estimate(alice_api, submit, route, body)
    assert before["epsilon"] > 0

    _damage(_data_dir)
    assert _estimate(alice_api, submit, route, body) == before

    accepted = submit(alice_api, f"{route}_query", body)
    status = alice_api.get(f"/api/status/{accepted.json()['uid']}")
    assert status.status_code == 200, status.content
    (charge,) = LedgerEntry.objects.filter(budget__user=alice, kind=LedgerEntry.Kind.CHARGE)
    assert (charge.epsilon, charge.delta) == (Decimal(str(before["epsilon"])), Decimal(str(before["delta"])))
