"""Red-team tests of SmartNoise-SQL (issue 11, cases 1, 5 and 6), through the real job path.

Each attack reads a private value from something the server used to let depend on it for free:
whether the SQL failed, which error it raised, or how often it ran.
"""

from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from budgets.models import LedgerEntry
from budgets.services import budget_grant
from datasets.connectors.base import DataConnector
from datasets.services import dataset_create
from queries.libraries.smartnoise_sql.adapter import SmartnoiseSqlAdapter
from tests.conftest import DEMO, demo_metadata

# The oldest passenger (80) and a passenger named exactly: each condition below matches one private row.
OLDEST_AND_AFTER_MR_B = "Age >= 80 AND Name >= 'Mr. B'"
NOBODY_OLD_AND_AFTER_ZZ = "Age >= 80 AND Name >= 'zz'"
ONE_PASSENGER = "Name = 'Mr. Owen Harris Braund'"
NO_PASSENGER = "Name = 'Mr. Nobody At All'"
OVERFLOW_ORACLE = (
    "SELECT COUNT(*) AS n FROM df WHERE CASE WHEN {cond} THEN ABS(-9223372036854775807 - 1) ELSE 1 END = 1"
)


def _sql(dataset: str, query: str, *, epsilon: float = 1.0, delta: float = 1e-5) -> dict[str, Any]:
    return {"dataset_name": dataset, "query_str": query, "epsilon": epsilon, "delta": delta, "mechanisms": {},
            "postprocess": True}  # fmt: skip


@pytest.fixture
def titanic(alice: Any) -> Any:
    dataset = dataset_create(name="TITANIC", metadata=demo_metadata("titanic"), path="titanic.csv")
    budget_grant(user=alice, dataset=dataset, epsilon=100, delta=0.001)
    return dataset


def _answer(api: Any, submit: Any, body: dict[str, Any]) -> tuple[int, Any, Any, int | None]:
    """What a researcher sees of a real query: status, error, result columns and row count."""
    accepted = submit(api, "smartnoise_sql_query", body)
    assert accepted.status_code == 202, accepted.content
    status = api.get(f"/api/status/{accepted.json()['uid']}")
    job = status.json()
    released = (job.get("result") or {}).get("result") or {}
    frame = released.get("df") or {}
    return status.status_code, job.get("error"), frame.get("columns"), len(frame["data"]) if frame else None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("matching", "not_matching", "epsilon"),
    [(OLDEST_AND_AFTER_MR_B, NOBODY_OLD_AND_AFTER_ZZ, 0.0001), (ONE_PASSENGER, NO_PASSENGER, 1.0)],
)
def test_an_overflow_on_a_private_row_is_no_oracle(titanic, alice_api, submit, matching, not_matching, epsilon):
    """Case 1: ABS(-2^63) under a CASE WHEN on private values failed ("integer overflow") exactly when some
    private row matched, and the answer without it differed, so a binary search read a name at no cost."""
    answers = [
        _answer(alice_api, submit, _sql("TITANIC", OVERFLOW_ORACLE.format(cond=cond), epsilon=epsilon))
        for cond in (matching, not_matching)
    ]

    assert answers[0] == answers[1]
    status, error, columns, _ = answers[0]
    assert (status, error, columns) == (200, None, ["n"])
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).count() == 2


class FrameConnector(DataConnector):
    """Given private rows."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def get_pandas(self) -> pd.DataFrame:
        return self.frame


HUGE = 2**62
HUGE_INTS = {
    "@context": ["http://www.w3.org/ns/csvw", "csvw-safe-context.jsonld"], "@type": "Table",
    "maxContributions": 1, "maxLength": 3, "publicLength": 3,
    "tableSchema": {"columns": [
        {"@type": "Column", "name": "who", "datatype": "string", "nullableProportion": 0.0},
        {"@type": "Column", "name": "x", "datatype": "int", "nullableProportion": 0.0, "minimum": 0, "maximum": HUGE},
    ]},
}  # fmt: skip


@pytest.mark.parametrize("matching", ["('a')", "('a', 'b')"])
def test_a_sum_that_overflows_on_private_rows_is_no_oracle(matching: str) -> None:
    """Case 1 (SUM): SQLite's SUM raised "integer overflow" exactly when the private rows it added exceed 2^63,
    which a WHERE on private values turns into a free test of those values."""
    rows = FrameConnector(pd.DataFrame({"who": ["a", "b", "c"], "x": [HUGE, HUGE, 1]}))
    body = {"query_str": f"SELECT SUM(x) AS s FROM df WHERE who IN {matching}", "epsilon": 1e12, "delta": 1e-5,
            "mechanisms": {}, "postprocess": False}  # fmt: skip

    result = SmartnoiseSqlAdapter(body=body, connector=rows, metadata=HUGE_INTS).run()

    assert result["df"]["columns"] == ["res_0", "res_1"]  # the key count and the sum, both noisy


@pytest.mark.django_db
def test_grouping_by_name_with_a_delta_below_one_over_n_publishes_no_name(titanic, alice_api, submit):
    """Case 5: GROUP BY Name with a large δ (0.13 on 887 passengers) published real names; with δ below 1/n,
    snsql's censoring threshold keeps every one-passenger partition out of the answer."""
    names = set(pd.read_csv(DEMO / "datasets" / "titanic.csv")["Name"])
    body = _sql("TITANIC", "SELECT Name, COUNT(*) AS n FROM df GROUP BY Name", delta=1e-7)

    accepted = submit(alice_api, "smartnoise_sql_query", body)
    status = alice_api.get(f"/api/status/{accepted.json()['uid']}")

    assert status.status_code == 200, status.content
    frame = pd.DataFrame.from_dict(status.json()["result"]["result"]["df"], orient="tight")
    assert list(frame.columns) == ["Name", "n"]
    assert not set(frame["Name"]) & names
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).count() == 1


@pytest.mark.django_db
def test_a_nan_result_is_released_once_and_charged_once(alice, alice_api, penguin, submit):
    """Case 6: a result holding NaN made the server run the query again, up to 6 times, and charge it once:
    five releases went unaccounted."""
    body = _sql("PENGUIN", "SELECT SQRT(COUNT(*) - 1000) AS r FROM df")

    accepted = submit(alice_api, "smartnoise_sql_query", body)
    status = alice_api.get(f"/api/status/{accepted.json()['uid']}")

    assert status.status_code == 200, status.content
    response = status.json()["result"]
    assert response["result"]["df"]["columns"] == ["r"]
    assert response["result"]["df"]["data"] == [[None]]  # NaN, as lomas-client decodes it
    (charge,) = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE)
    assert (charge.epsilon, response["epsilon"]) == (Decimal(1), 1.0)
