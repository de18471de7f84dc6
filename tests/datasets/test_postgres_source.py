"""Datasets stored in PostgreSQL (SQL_DB) on the real server: registered by command, read-only, queried
through the API by SmartNoise-SQL (inside the database), OpenDP and DiffPrivLib, the URL never shown."""

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.core.management import call_command

from budgets.models import LedgerEntry
from budgets.services import budget_grant
from datasets.connectors import FRAMES, get_connector
from datasets.models import Dataset
from lomas.errors import PRIVATE_RUN_FAILED
from tests.api.test_diffprivlib_jobs import _body as diffprivlib_body
from tests.api.test_opendp_jobs import _biscoe_count, _plan
from tests.conftest import SQL_CREDENTIALS_NAME as CREDENTIALS_NAME
from tests.conftest import SQL_SECRET_MARKER

pytestmark = pytest.mark.django_db


@pytest.fixture
def penguin_sql(alice: Any, penguin: Any, sql_credentials: str) -> Dataset:
    """PENGUIN copied into the table lomas_data.penguin by the demo command, with Alice's budget on it."""
    out = StringIO()
    call_command(
        "load_dataset_into_postgres", "-d", "PENGUIN", "--table", "lomas_data.penguin", "-sql_cred_n", CREDENTIALS_NAME,
        "--json", stdout=out,
    )  # fmt: skip
    assert json.loads(out.getvalue()) == {"dataset": "PENGUIN_SQL", "table": "lomas_data.penguin", "rows": 344}
    dataset = Dataset.objects.get(name="PENGUIN_SQL")
    budget_grant(user=alice, dataset=dataset, epsilon=10, delta=0.005)
    return dataset


def _charges() -> list[tuple[float, float]]:
    return [(float(e.epsilon), float(e.delta)) for e in LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE)]


def test_the_command_registers_a_table_whose_rows_are_the_files(penguin_sql: Dataset, penguin: Any) -> None:
    from_table = get_connector(penguin_sql).get_pandas()
    from_file = get_connector(penguin).get_pandas()

    assert penguin_sql.access == "SQL_DB"
    assert (penguin_sql.sql_table, penguin_sql.sql_credentials_name) == ("lomas_data.penguin", CREDENTIALS_NAME)
    assert from_table.dtypes.to_dict() == from_file.dtypes.to_dict()
    assert (
        from_table.sort_values(list(from_table.columns))
        .reset_index(drop=True)
        .equals(from_file.sort_values(list(from_file.columns)).reset_index(drop=True))
    )


def test_add_dataset_registers_a_sql_db_dataset_without_its_url(penguin_sql: Dataset, admin_api: Any) -> None:
    out = StringIO()
    call_command(
        "add_dataset", "-d", "PENGUIN_TABLE", "-db", "SQL_DB", "-sql_cred_n", CREDENTIALS_NAME,
        "-sql_table", "lomas_data.penguin", "-m_db", "PATH_DB", "-mp", "datasets/demo/metadata/penguin.json",
        stdout=out,
    )  # fmt: skip
    shown = admin_api.get("/api/dataset/PENGUIN_TABLE")

    dataset = Dataset.objects.get(name="PENGUIN_TABLE")
    assert (dataset.access, dataset.sql_table) == ("SQL_DB", "lomas_data.penguin")
    assert shown.json()["dataset_access"] == {
        "database_type": "SQL_DB", "credentials_name": CREDENTIALS_NAME, "table": "lomas_data.penguin",
    }  # fmt: skip
    assert SQL_SECRET_MARKER not in out.getvalue() + shown.content.decode()


def test_the_admin_api_adds_a_sql_db_dataset(penguin_sql: Dataset, admin_api: Any, _data_dir: Any) -> None:
    (_data_dir / "penguin.json").write_text(json.dumps(penguin_sql.metadata))
    body = {"dataset_name": "PENGUIN_API", "database_type": "SQL_DB", "metadata_database_type": "PATH_DB",
            "sql_table": "lomas_data.penguin", "sql_credentials_name": CREDENTIALS_NAME,
            "metadata_path": "penguin.json"}  # fmt: skip

    added = admin_api.post("/api/dataset", body, format="json")

    assert added.status_code == 200, added.content
    assert Dataset.objects.get(name="PENGUIN_API").sql_table == "lomas_data.penguin"


def test_connections_are_read_only(penguin_sql: Dataset) -> None:
    table = get_connector(penguin_sql).sql_table()

    with table.connect() as connection, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connection.execute("DELETE FROM lomas_data.penguin")


def test_an_unreachable_database_is_a_500_that_never_shows_the_url(
    penguin_sql: Dataset, settings: Any, alice_api: Any, submit: Any
) -> None:
    settings.LOMAS_SQL_CREDENTIALS = {CREDENTIALS_NAME: "postgresql://secret-user:secret-marker@127.0.0.1:1/x"}
    body = {"dataset_name": "PENGUIN_SQL", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0,
            "delta": 1e-5, "mechanisms": {}, "postprocess": True}  # fmt: skip

    accepted = submit(alice_api, "smartnoise_sql_query", body)
    job = alice_api.get(f"/api/status/{accepted.json()['uid']}")

    assert job.json()["status"] == "failed"
    assert job.json()["error"]["type"] == "InternalServerException"
    assert "secret" not in job.content.decode()
    assert _charges() == []


def _sql_query(api: Any, submit: Any, query: str) -> Any:
    body = {"dataset_name": "PENGUIN_SQL", "query_str": query, "epsilon": 1.0, "delta": 1e-5, "mechanisms": {},
            "postprocess": True}  # fmt: skip
    accepted = submit(api, "smartnoise_sql_query", body)
    assert accepted.status_code == 202, accepted.content
    return api.get(f"/api/status/{accepted.json()['uid']}").json()


def test_smartnoise_sql_runs_in_the_database_and_charges_its_cost(
    penguin_sql: Dataset, alice_api: Any, submit: Any
) -> None:
    FRAMES.clear()
    job = _sql_query(
        alice_api, submit, "SELECT species, COUNT(*) AS n, AVG(bill_length_mm) AS mean FROM df GROUP BY species"
    )

    released = job["result"]["result"]["df"]
    assert job["status"] == "complete", job
    assert released["columns"] == ["species", "n", "mean"]
    assert sorted(row[0] for row in released["data"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert all(20 < row[2] < 70 for row in released["data"])
    assert FRAMES.nbytes == 0  # no copy of the rows in this process
    assert _charges() == [(job["result"]["epsilon"], job["result"]["delta"])]


@pytest.mark.parametrize(
    ("query", "refused"),
    [
        ("SELECT COUNT(*) AS n FROM df WHERE CAST(bill_length_mm AS INTEGER) > 40", "CAST cannot be used"),
        ("SELECT COUNT(*) AS n FROM df WHERE SQRT(bill_length_mm) > 6", "SQRT cannot be used"),
        ("SELECT COUNT(*) AS n FROM df WHERE species > 3", "cannot run on this dataset's database"),
    ],
)
def test_what_could_fail_in_postgresql_is_refused_free(
    penguin_sql: Dataset, alice_api: Any, submit: Any, query: str, refused: str
) -> None:
    job = _sql_query(alice_api, submit, query)

    assert job["status"] == "failed"
    assert job["error"]["type"] == "InvalidQueryException"
    assert refused in job["error"]["message"]
    assert _charges() == []


def test_a_division_by_a_private_zero_is_null_not_an_error(penguin_sql: Dataset, alice_api: Any, submit: Any) -> None:
    job = _sql_query(alice_api, submit, "SELECT COUNT(*) AS n FROM df WHERE 1 / (bill_length_mm - 39.1) > 0")

    assert job["status"] == "complete", job
    assert job["result"]["result"]["df"]["columns"] == ["n"]


def test_opendp_reads_the_table(penguin_sql: Dataset, alice_api: Any, submit: Any) -> None:
    body = {"dataset_name": "PENGUIN_SQL", "opendp_json": _plan(penguin_sql, _biscoe_count, epsilon=1.0),
            "epsilon": 1.0, "delta": None, "rho": None, "approx_zcdp": True}  # fmt: skip

    accepted = submit(alice_api, "opendp_query", body)
    job = alice_api.get(f"/api/status/{accepted.json()['uid']}").json()

    assert job["status"] == "complete", job
    assert job["result"]["result"]["type"] == "opendp_polars"
    assert _charges() == [(job["result"]["epsilon"], job["result"]["delta"])]


def test_diffprivlib_reads_the_table(penguin_sql: Dataset, alice_api: Any, submit: Any) -> None:
    accepted = submit(alice_api, "diffprivlib_query", diffprivlib_body(dataset_name="PENGUIN_SQL"))
    job = alice_api.get(f"/api/status/{accepted.json()['uid']}").json()

    assert job["status"] == "complete", job
    assert job["result"]["result"]["type"] == "diffprivlib"
    assert _charges() == [(job["result"]["epsilon"], job["result"]["delta"])]


@pytest.fixture
def slow_penguin(penguin_sql: Dataset, sql_credentials: str) -> Iterator[Dataset]:
    """PENGUIN_SQL over a view that reads each row in 50 ms (17 s in all)."""
    with psycopg.connect(sql_credentials, autocommit=True) as connection:
        connection.execute(
            "CREATE VIEW lomas_data.slow_penguin AS SELECT * FROM lomas_data.penguin WHERE pg_sleep(0.05) IS NOT NULL"
        )
        Dataset.objects.filter(pk=penguin_sql.pk).update(sql_table="lomas_data.slow_penguin")
        yield penguin_sql
        connection.execute("DROP VIEW lomas_data.slow_penguin")


def _running_statements(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%slow_penguin%'"
        return connection.execute(query + " AND pid <> pg_backend_pid()").fetchone()[0]


def test_the_job_time_limit_stops_the_statement_and_charges_it(
    slow_penguin: Dataset, settings: Any, sql_credentials: str, alice_api: Any, submit: Any
) -> None:
    settings.LOMAS_JOB_TIME_LIMIT = 4

    job = _sql_query(alice_api, submit, "SELECT COUNT(*) AS n FROM df")

    assert job["status"] == "failed"
    assert "its cost was charged" in job["error"]["message"]
    assert len(_charges()) == 1
    assert _running_statements(sql_credentials) == 0


def test_the_statement_timeout_is_a_charged_failure(
    slow_penguin: Dataset, settings: Any, alice_api: Any, submit: Any
) -> None:
    settings.LOMAS_SQL_STATEMENT_TIMEOUT_SECONDS = 2

    job = _sql_query(alice_api, submit, "SELECT COUNT(*) AS n FROM df")

    assert job["status"] == "failed"
    assert job["error"]["message"] == PRIVATE_RUN_FAILED
    assert len(_charges()) == 1
