"""δ bounded by the population: a query's δ must stay below 1/n, n the rows the metadata says the dataset
may hold, or a δ-probability event can publish a record outright.

Attack (issue 11, case 5): `SELECT Name, COUNT(*) FROM df GROUP BY Name` on TITANIC with δ 0.13 (the demo
budget allows 0.2) published 118 real passenger names; on FSO_INCOME_SYNTHETIC (2 M rows), δ 1e-6 let a
`GROUP BY income` publish one person's exact income.
"""

from typing import Any

import pytest

from budgets.models import LedgerEntry
from budgets.services import budget_grant
from datasets.services import dataset_create
from tests.conftest import demo_metadata

pytestmark = pytest.mark.django_db

BY_NAME = "SELECT Name, COUNT(*) AS n FROM df GROUP BY Name"


def _sql(dataset: str, query: str, delta: float) -> dict[str, Any]:
    return {"dataset_name": dataset, "query_str": query, "epsilon": 1.0, "delta": delta, "mechanisms": {},
            "postprocess": True}  # fmt: skip


@pytest.fixture
def titanic(alice: Any) -> Any:
    dataset = dataset_create(name="TITANIC", metadata=demo_metadata("titanic"), path="titanic.csv")
    budget_grant(user=alice, dataset=dataset, epsilon=10, delta=0.2)
    return dataset


def _outcome(api: Any, submit: Any, route: str, body: dict[str, Any]) -> Any:
    accepted = submit(api, route, body)
    assert accepted.status_code == 202, accepted.content
    return api.get(f"/api/status/{accepted.json()['uid']}")


@pytest.mark.parametrize(
    "route", ["smartnoise_sql_query", "estimate_smartnoise_sql_cost", "dummy_smartnoise_sql_query"]
)
def test_a_delta_of_one_over_n_or_more_is_refused_free_on_every_route(route, titanic, alice_api, submit):
    body = _sql("TITANIC", BY_NAME, 0.13)
    if route.startswith("dummy"):
        body |= {"dummy_nb_rows": 100, "dummy_seed": 1}
    status = _outcome(alice_api, submit, route, body)
    assert status.status_code == 400
    error = status.json()["error"]
    assert error["type"] == "InvalidQueryException"
    assert error["message"].startswith("The query's delta 0.18655 is too large for this dataset: it may hold 887 rows")
    assert "a delta of 1/887 = 0.0011274 or more can release a record." in error["message"]
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()


def test_the_bound_is_on_the_charged_delta(titanic, alice_api, submit):
    """snsql charges more than the δ asked for a grouped count: the bound holds on what is charged."""
    refused = _outcome(alice_api, submit, "estimate_smartnoise_sql_cost", _sql("TITANIC", BY_NAME, 0.001))
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("The query's delta 0.0014")
    allowed = _outcome(alice_api, submit, "estimate_smartnoise_sql_cost", _sql("TITANIC", BY_NAME, 0.0001))
    assert allowed.status_code == 200, allowed.content
    assert 0.0001 < allowed.json()["result"]["delta"] < 1 / 887


def test_a_large_dataset_bounds_delta_by_its_own_size(alice, alice_api, submit):
    fso = dataset_create(
        name="FSO_INCOME_SYNTHETIC", metadata=demo_metadata("fso_income_synthetic"), path="penguin.csv"
    )
    budget_grant(user=alice, dataset=fso, epsilon=10, delta=0.01)
    query = "SELECT income, COUNT(*) AS n FROM df GROUP BY income"
    status = _outcome(alice_api, submit, "estimate_smartnoise_sql_cost", _sql("FSO_INCOME_SYNTHETIC", query, 1e-6))
    assert status.status_code == 400
    assert "it may hold 2032543 rows" in status.json()["error"]["message"]


def test_metadata_without_a_length_accepts_only_a_delta_of_zero(alice, alice_api, submit, penguin):
    metadata = {key: value for key, value in penguin.metadata.items() if key not in ("maxLength", "publicLength")}
    dataset_create(name="PENGUIN_NO_LENGTH", metadata=metadata, path="penguin.csv")
    budget_grant(user=alice, dataset=penguin.__class__.objects.get(name="PENGUIN_NO_LENGTH"), epsilon=10, delta=0.1)
    status = _outcome(
        alice_api, submit, "estimate_smartnoise_sql_cost",
        _sql("PENGUIN_NO_LENGTH", "SELECT COUNT(*) AS n FROM df", 1e-5),
    )  # fmt: skip
    assert status.status_code == 400
    assert "its metadata gives no length" in status.json()["error"]["message"]
