"""Execution on private data is a release: whatever happens once private rows are read is charged, and a
failure there is told in one fixed message without any library text (a source that cannot be read at all
is a server fault: a 500, uncharged).

Attack (issue 11, cases 1 and 7): a query that fails or not depending on a private value, refused for free
with the library's message, reads out a record bit by bit at no cost.
"""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from budgets.models import Budget, LedgerEntry
from lomas.errors import PRIVATE_RUN_FAILED
from queries.libraries.base import is_twin
from queries.libraries.smartnoise_sql.adapter import SmartnoiseSqlAdapter
from queries.models import QueryArchive

pytestmark = pytest.mark.django_db

COUNT = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
         "mechanisms": {}, "postprocess": True}  # fmt: skip


def _outcome(api: Any, submit: Any, route: str, body: dict[str, Any]) -> Any:
    accepted = submit(api, route, body)
    assert accepted.status_code == 202, accepted.content
    return api.get(f"/api/status/{accepted.json()['uid']}")


def _replace(data_dir: Path, frame: pd.DataFrame) -> None:
    path = data_dir / "penguin.csv"
    path.unlink()
    frame.to_csv(path, index=False)


def _spent(alice: Any, penguin: Any) -> tuple[Decimal, Decimal]:
    budget = Budget.objects.get(user=alice, dataset=penguin)
    return budget.spent_epsilon, budget.spent_delta


def test_a_failure_on_the_private_rows_is_charged_and_told_without_details(
    alice, alice_api, penguin, submit, monkeypatch
):
    # given: the adapters admit nothing that fails on a value, so a fault is injected into the real run
    # (the twin's rehearsal runs as it is), failing with a message that quotes a private value
    run = SmartnoiseSqlAdapter.run

    def failing_on_private_rows(adapter: SmartnoiseSqlAdapter) -> dict[str, Any]:
        if not is_twin(adapter.connector):
            raise ValueError("row 17 has body_mass_g = 6300")
        return run(adapter)

    monkeypatch.setattr(SmartnoiseSqlAdapter, "run", failing_on_private_rows)

    # when
    status = _outcome(alice_api, submit, "smartnoise_sql_query", COUNT)

    # then: a 422 with the fixed message, charged in full, archived, and the user may query again
    assert status.status_code == 422
    assert status.json()["error"] == {"type": "ExternalLibraryException", "message": PRIVATE_RUN_FAILED,
                                      "library": "smartnoise_sql"}  # fmt: skip
    (charge,) = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE)
    assert charge.epsilon == Decimal(1)
    assert _spent(alice, penguin)[0] == Decimal(1)
    (archive,) = QueryArchive.objects.all()
    assert archive.response["error"]["message"] == PRIVATE_RUN_FAILED
    assert archive.response["epsilon"] == 1.0
    listed = alice_api.post("/api/get_previous_queries", {"dataset_name": "PENGUIN"}, format="json")
    assert listed.json() == {"previous_queries": []}  # lomas-client decodes every listed record as a result
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True


def test_a_source_that_cannot_be_read_is_a_server_fault_uncharged(alice, alice_api, penguin, submit, _data_dir):
    """A private file the metadata does not describe fails the same for every query: a 500, not a release."""
    frame = pd.read_csv(_data_dir / "penguin.csv")
    frame["body_mass_g"] = frame["body_mass_g"].astype(object)
    frame.loc[17, "body_mass_g"] = "heavy"
    _replace(_data_dir, frame)

    status = _outcome(alice_api, submit, "smartnoise_sql_query", COUNT)

    assert status.status_code == 500
    assert status.json()["error"] == {"type": "InternalServerException"}
    assert _spent(alice, penguin) == (Decimal(0), Decimal(0))


def test_a_refusal_before_the_private_rows_is_free_and_keeps_its_message(alice, alice_api, penguin, submit):
    status = _outcome(alice_api, submit, "smartnoise_sql_query", {**COUNT, "query_str": "SELECT nope FROM df"})
    assert status.status_code in (400, 422)
    assert status.json()["error"]["message"] != PRIVATE_RUN_FAILED
    assert _spent(alice, penguin) == (Decimal(0), Decimal(0))
    assert not QueryArchive.objects.exists()


def test_the_time_limit_on_the_private_rows_is_charged(alice, alice_api, penguin, submit, settings, _data_dir):
    # given: a private file large enough to outlast a one-second limit, while the 100-row twin does not
    frame = pd.read_csv(_data_dir / "penguin.csv")
    _replace(_data_dir, pd.concat([frame] * 3000, ignore_index=True))
    settings.LOMAS_JOB_TIME_LIMIT = 1

    # when
    status = _outcome(alice_api, submit, "smartnoise_sql_query", COUNT)

    # then
    assert status.status_code == 400
    assert "its cost was charged, as it had read the private data" in status.json()["error"]["message"]
    assert _spent(alice, penguin)[0] == Decimal(1)
