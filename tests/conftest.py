"""Shared fixtures: personas built through the services, and API clients."""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "datasets" / "demo"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With LOMAS_REQUIRE_INTEGRATION set (CI), a run whose integration tests did not all pass fails."""
    if not os.environ.get("LOMAS_REQUIRE_INTEGRATION") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = [r for r in reporter.stats.get("passed", []) if "/integration/" in r.nodeid]
    skipped = [r for r in reporter.stats.get("skipped", []) if "/integration/" in r.nodeid]
    if skipped or not passed:
        reporter.write_line(
            f"LOMAS_REQUIRE_INTEGRATION: {len(passed)} integration tests passed, {len(skipped)} skipped", red=True
        )
        session.exitstatus = 1


def demo_metadata(name: str) -> dict[str, Any]:
    """A demo dataset's csvw-eo metadata."""
    return json.loads((DEMO / "metadata" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _data_dir(settings: Any, tmp_path: Path) -> Path:
    """Each test reads datasets from its own data directory, holding the demo CSVs, and has its own
    columnar store."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for csv in (DEMO / "datasets").glob("*.csv"):
        (data_dir / csv.name).symlink_to(csv)
    settings.LOMAS_DATA_DIR = data_dir
    settings.LOMAS_DATASET_STORE_DIR = tmp_path / "datasets"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return data_dir


@pytest.fixture(autouse=True)
def _log_scope() -> Iterator[None]:
    """Each test binds log context (job, user) in a scope of its own, as each request and job does: a
    service a test calls directly leaves nothing bound for the next test."""
    from lomas import logs

    with logs.scope():
        yield


@pytest.fixture(autouse=True)
def _fresh_cache(settings: Any) -> None:
    """Each test starts with an empty cache (cost estimates, submission counts), and with no submit
    limit: only the submit limit's own tests set one."""
    from django.core.cache import cache

    cache.clear()
    settings.LOMAS_SUBMIT_LIMIT = 0


# The demo datasets by name, with the stem of their metadata file in datasets/demo/metadata/.
DEMO_DATASETS = {
    "BIRTHDAYS": "birthday",
    "COVID_SYNTHETIC": "covid_synthetic",
    "FSO_INCOME_SYNTHETIC": "fso_income_synthetic",
    "IRIS": "iris",
    "PENGUIN": "penguin",
    "PUMS": "pums",
    "TITANIC": "titanic",
}


@pytest.fixture
def demo_datasets(db: None) -> None:
    """Every demo dataset (the upstream collections name them all), those not yet created."""
    from datasets.models import Dataset
    from datasets.services import dataset_create

    for name, stem in DEMO_DATASETS.items():
        if not Dataset.objects.filter(name=name).exists():
            dataset_create(name=name, metadata=demo_metadata(stem), path=f"{stem}.csv")


@pytest.fixture
def penguin(db: None) -> Any:
    from datasets.services import dataset_create

    return dataset_create(name="PENGUIN", metadata=demo_metadata("penguin"), path="penguin.csv")


@pytest.fixture
def iris(db: None) -> Any:
    from datasets.services import dataset_create

    return dataset_create(name="IRIS", metadata=demo_metadata("iris"), path="iris.csv")


@pytest.fixture
def alice(db: None, penguin: Any) -> Any:
    """A researcher with a PENGUIN budget of (10, 0.005)."""
    from accounts.services import user_create
    from budgets.services import budget_grant

    user = user_create(username="Alice", email="alice@example.com", password="alice-password")
    budget_grant(user=user, dataset=penguin, epsilon=10, delta=0.005)
    return user


@pytest.fixture
def bob(db: None, iris: Any) -> Any:
    """A researcher with access to IRIS only."""
    from accounts.services import user_create
    from budgets.services import budget_grant

    user = user_create(username="Bob", email="bob@example.com", password="bob-password")
    budget_grant(user=user, dataset=iris, epsilon=10, delta=1e-4)
    return user


@pytest.fixture
def admin_user(db: None) -> Any:
    from accounts.services import user_create

    return user_create(username="admin", email="admin@example.com", password="admin-password", is_lomas_admin=True)


def api_client_for(user: Any) -> APIClient:
    """An API client authenticated as the user (for tests that are not about authentication)."""
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def alice_api(alice: Any) -> APIClient:
    return api_client_for(alice)


@pytest.fixture
def bob_api(bob: Any) -> APIClient:
    return api_client_for(bob)


@pytest.fixture
def admin_api(admin_user: Any) -> APIClient:
    return api_client_for(admin_user)


@pytest.fixture
def submit(django_capture_on_commit_callbacks: Any) -> Any:
    """POST a DP route and run its job (eagerly, on commit) as a worker would; returns the 202 response."""

    def _submit(api: APIClient, route: str, body: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(f"/api/{route}", body, format="json")

    return _submit


@pytest.fixture
def spans() -> Any:
    """Finished tracing spans of this test, kept in memory (an InMemorySpanExporter)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not hasattr(provider, "lomas_test_exporter"):
        provider.lomas_test_exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(provider.lomas_test_exporter))
    exporter = provider.lomas_test_exporter
    exporter.clear()
    yield exporter
    exporter.clear()


# Datasets stored in PostgreSQL (SQL_DB): a database of the test run's own on the local server.
SQL_SERVER = "postgresql://postgres@127.0.0.1:5432"
SQL_SOURCE_DATABASE = f"lomas_test_sql_source_{os.getpid()}"
SQL_CREDENTIALS_NAME = "source"
# The URL carries a marker that tests look for in what is shown: it must never appear.
SQL_SECRET_MARKER = "secret-marker"


@pytest.fixture(scope="session")
def sql_source_database() -> Any:
    """The database holding the SQL_DB datasets' tables (dropped at the end); skips without a server."""
    import psycopg

    try:
        server = psycopg.connect(f"{SQL_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432")
    with server:
        server.execute(f"CREATE DATABASE {SQL_SOURCE_DATABASE}")
    yield f"{SQL_SERVER}/{SQL_SOURCE_DATABASE}?application_name={SQL_SECRET_MARKER}"
    with psycopg.connect(f"{SQL_SERVER}/postgres", autocommit=True) as server:
        server.execute(f"DROP DATABASE IF EXISTS {SQL_SOURCE_DATABASE} WITH (FORCE)")


@pytest.fixture
def sql_credentials(settings: Any, sql_source_database: str) -> str:
    """LOMAS_SQL_CREDENTIALS naming the source database as SQL_CREDENTIALS_NAME."""
    settings.LOMAS_SQL_CREDENTIALS = {SQL_CREDENTIALS_NAME: sql_source_database}
    return sql_source_database
