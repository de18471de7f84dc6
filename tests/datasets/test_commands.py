"""Dataset commands: add (path, URL, S3), YAML collections, delete, show, list; collections drop/get/export."""

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEntry
from budgets.models import Budget
from datasets.connectors import get_connector
from datasets.models import Dataset

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "tests" / "fixtures" / "collections"
METADATA = ROOT / "datasets" / "demo" / "metadata"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_dataset_local_path(db):
    text = run(
        "add_dataset",
        "-d",
        "PENGUIN",
        "-db",
        "PATH_DB",
        "-d_path",
        "penguin.csv",
        "-m_db",
        "PATH_DB",
        "-mp",
        str(METADATA / "penguin.json"),
    )
    assert text == "Dataset PENGUIN added (penguin.csv).\n"
    dataset = Dataset.objects.get(name="PENGUIN")
    assert dataset.metadata["maxContributions"] == 1
    assert AuditEntry.objects.get(action="dataset.add").details["source"]["path"] == "penguin.csv"


def test_add_dataset_url_and_s3_forms(db):
    url = "https://raw.githubusercontent.com/mwaskom/seaborn-data/master/iris.csv"
    run(
        "add_dataset",
        "--dataset_name",
        "IRIS",
        "--database_type",
        "PATH_DB",
        "--dataset_path",
        url,
        "--metadata_database_type",
        "PATH_DB",
        "--metadata_path",
        str(METADATA / "iris.json"),
    )
    run(
        "add_dataset",
        "-d",
        "TITANIC",
        "-db",
        "S3_DB",
        "-s3b",
        "example",
        "-s3k",
        "data/titanic.csv",
        "-s3_url",
        "http://localhost:9000",
        "-cred_n",
        "minio",
        "-m_db",
        "PATH_DB",
        "-mp",
        str(METADATA / "titanic.json"),
    )
    assert Dataset.objects.get(name="IRIS").path == url
    titanic = Dataset.objects.get(name="TITANIC")
    assert (titanic.access, titanic.s3_bucket, titanic.s3_key, titanic.s3_credentials_name) == (
        "S3_DB",
        "example",
        "data/titanic.csv",
        "minio",
    )
    assert json.loads(run("get_dataset", "-d", "TITANIC", "--json"))["dataset_access"] == {
        "database_type": "S3_DB",
        "endpoint_url": "http://localhost:9000",
        "bucket": "example",
        "key": "data/titanic.csv",
        "credentials_name": "minio",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-db", "PATH_DB", "-d_path", "penguin.csv", "-mp", "absent.json"], "cannot read the metadata file"),
        (["-db", "PATH_DB", "-mp", str(METADATA / "penguin.json")], "a PATH_DB dataset needs a 'path'"),
        (["-db", "PATH_DB", "-d_path", "../etc/passwd", "-mp", str(METADATA / "penguin.json")], "leaves the data"),
        (["-db", "S3_DB", "-s3b", "b", "-mp", str(METADATA / "penguin.json")], "needs key, credentials_name"),
    ],
)
def test_add_dataset_failures(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("add_dataset", "-d", "X", "-m_db", "PATH_DB", *args)
    assert not Dataset.objects.exists()


def test_add_dataset_with_invalid_metadata_names_the_field(db, tmp_path):
    document = json.loads((METADATA / "penguin.json").read_text())
    del document["maxContributions"]
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(CommandError, match=r"^Dataset X: invalid metadata: Table field 'maxContributions' is required"):
        run(
            "add_dataset",
            "-d",
            "X",
            "-db",
            "PATH_DB",
            "-d_path",
            "x.csv",
            "-m_db",
            "PATH_DB",
            "-mp",
            str(tmp_path / "bad.json"),
        )
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CommandError, match=r"is not JSON"):
        run(
            "add_dataset",
            "-d",
            "X",
            "-db",
            "PATH_DB",
            "-d_path",
            "x.csv",
            "-m_db",
            "PATH_DB",
            "-mp",
            str(tmp_path / "bad.json"),
        )


def test_add_duplicate_dataset_fails(penguin):
    with pytest.raises(CommandError, match=r"^Dataset PENGUIN already exists."):
        run(
            "add_dataset",
            "-d",
            "PENGUIN",
            "-db",
            "PATH_DB",
            "-d_path",
            "p.csv",
            "-m_db",
            "PATH_DB",
            "-mp",
            str(METADATA / "penguin.json"),
        )


def test_add_datasets_via_yaml_then_keep_overwrite_and_clean(db):
    path = str(COLLECTIONS / "dataset_collection.yaml")
    data = json.loads(run("add_datasets_via_yaml", "-yf", path, "--json"))
    assert [change["name"] for change in data["changes"]] == [
        "IRIS",
        "PENGUIN",
        "PUMS",
        "TITANIC",
        "FSO_INCOME_SYNTHETIC",
        "COVID_SYNTHETIC",
        "BIRTHDAYS",
    ]
    assert json.loads(run("get_list_of_datasets", "--json")) == sorted(change["name"] for change in data["changes"])
    penguin = Dataset.objects.get(name="PENGUIN")
    penguin.path = "other.csv"
    penguin.save()
    assert "  keep datasets PENGUIN" in run("add_datasets_via_yaml", "-yf", path)
    assert "update datasets PENGUIN (source)" in run("add_datasets_via_yaml", "-yf", path, "-od", "-om")
    penguin.refresh_from_db()
    assert penguin.path == "penguin.csv" and penguin.version == 2
    Dataset.objects.create(name="EXTRA", path="x.csv", metadata=penguin.metadata)
    assert "delete datasets EXTRA" in run("add_datasets_via_yaml", "-yf", path, "-c")
    assert not Dataset.objects.filter(name="EXTRA").exists()


def test_add_datasets_via_yaml_dry_run_writes_nothing(db):
    text = run("add_datasets_via_yaml", "-yf", str(COLLECTIONS / "dataset_collection.yaml"), "--dry-run")
    assert "   add datasets IRIS" in text
    assert not Dataset.objects.exists() and not AuditEntry.objects.exists()


def test_upstream_collection_with_yaml_metadata_is_refused_whole(db):
    with pytest.raises(CommandError, match=r"^Dataset IRIS: cannot read the metadata file"):
        run("add_datasets_via_yaml", "-yf", str(COLLECTIONS / "upstream_dataset_collection.yaml"))
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("datasets: [", "^Invalid YAML"),
        ("datasets: {}", "must hold a 'datasets' list"),
        ("datasets:\n- dataset_access: {}", r"datasets\[0\] needs a 'dataset_name'"),
        ("datasets:\n- dataset_name: A\n  dataset_access: {database_type: FTP}", "unknown database_type 'FTP'"),
        (
            "datasets:\n- dataset_name: A\n  dataset_access: {database_type: S3_DB, bucket: b, key: k, "
            "credentials_name: c, secret_access_key: s}",
            "S3 keys are not stored",
        ),
        ("datasets:\n- dataset_name: A\n  dataset_access: {database_type: PATH_DB, path: a.csv}", "'metadata_access'"),
    ],
)
def test_invalid_dataset_collections(db, tmp_path, content, message):
    (tmp_path / "datasets.yaml").write_text(content)
    with pytest.raises(CommandError, match=message):
        run("add_datasets_via_yaml", "-yf", str(tmp_path / "datasets.yaml"))


def test_del_dataset_refuses_a_dataset_whose_ledgers_refer_to_it(alice, penguin, iris):
    with pytest.raises(CommandError, match=r"^Dataset PENGUIN cannot be deleted: the ledgers of 1 budget\(s\)"):
        run("del_dataset", "-d", "PENGUIN")
    assert Budget.objects.filter(dataset=penguin).exists()
    assert run("del_dataset", "-d", "IRIS") == "Dataset IRIS deleted.\n"
    assert AuditEntry.objects.get(action="dataset.delete").target == "IRIS"
    with pytest.raises(CommandError, match=r"^Dataset IRIS does not exist"):
        run("del_dataset", "-d", "IRIS")


def test_get_metadata_of_dataset_prints_the_stored_document(penguin):
    assert json.loads(run("get_metadata_of_dataset", "-d", "PENGUIN")) == penguin.metadata
    assert json.loads(run("get_metadata_of_dataset", "-d", "PENGUIN", "--json")) == penguin.metadata


def test_get_collection_and_export_round_trip(alice, tmp_path):
    users = yaml.safe_load(run("get_collection", "-c", "users"))
    assert users[0]["id"] == {"name": "Alice", "email": "alice@example.com"}
    assert "client_secret" not in json.dumps(users)
    assert set(json.loads(run("get_collection", "-c", "metadata", "--json"))) == {"PENGUIN"}
    run("get_collection", "-c", "datasets", "--export-dir", str(tmp_path))
    run("get_collection", "-c", "users", "--export-dir", str(tmp_path))
    exported = yaml.safe_load((tmp_path / "datasets_collection.yaml").read_text())
    assert exported["datasets"][0]["metadata_access"]["path"] == "metadata/PENGUIN.json"
    run("del_user", "-u", "Alice")
    run("add_datasets_via_yaml", "-yf", str(tmp_path / "datasets_collection.yaml"))
    run("add_users_via_yaml", "-yf", str(tmp_path / "users_collection.yaml"))
    assert json.loads(run("get_user", "-u", "Alice", "--json"))["datasets_list"][0]["initial_epsilon"] == 10.0


def test_drop_collections(alice, bob, admin_user):
    from uuid import uuid4

    from budgets.models import LedgerEntry
    from budgets.services import budget_charge

    budget_charge(user=alice, dataset=Dataset.objects.get(name="PENGUIN"), epsilon=2, delta=0, job_uid=uuid4())
    rows = LedgerEntry.objects.count()
    text = run("drop_collection", "-c", "users")
    assert "Nothing is erased from the ledger" in text and "  Alice: PENGUIN ε 2, δ 0" in text
    assert json.loads(run("get_list_of_users", "--json")) == ["admin"]
    assert LedgerEntry.objects.count() == rows
    with pytest.raises(CommandError, match=r"^Metadata is stored with its dataset"):
        run("drop_collection", "-c", "metadata")
    run("drop_collection", "-c", "queries_archives")
    with pytest.raises(CommandError, match=r"^Dataset IRIS cannot be deleted"):
        run("drop_collection", "-c", "datasets")
    assert Dataset.objects.count() == 2
    assert list(AuditEntry.objects.filter(action="collection.drop").values_list("target", flat=True)) == [
        "users",
        "queries_archive",
    ]


def test_synthesize_dataset_registers_seeded_rows_with_scaled_metadata_and_keeps_its_file(penguin, _data_dir):
    text = run("synthesize_dataset", "-d", "PENGUIN", "--rows", "2500", "--as", "PENGUIN_2500")
    again = run("synthesize_dataset", "-d", "PENGUIN", "--rows", "2500", "--as", "PENGUIN_2500_B")

    dataset = Dataset.objects.get(name="PENGUIN_2500")
    assert text == (
        "Dataset PENGUIN_2500 added: 2500 rows from the metadata of PENGUIN (penguin_2500-2500-0.parquet generated).\n"
    )
    assert "(penguin_2500_b-2500-0.parquet generated)" in again
    assert dataset.metadata["maxLength"] == dataset.metadata["publicLength"] == 2500
    frame = get_connector(dataset).get_pandas()
    assert len(frame) == 2500 and set(frame["species"].dropna()) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert (_data_dir / "penguin_2500-2500-0.parquet").read_bytes() == (
        _data_dir / "penguin_2500_b-2500-0.parquet"
    ).read_bytes()
    assert AuditEntry.objects.get(action="dataset.add", target="PENGUIN_2500").details["source"]["path"] == (
        "penguin_2500-2500-0.parquet"
    )


def test_synthesize_dataset_keeps_a_file_of_the_same_rows_and_refuses_a_taken_name(penguin, _data_dir):
    run("synthesize_dataset", "-d", "PENGUIN", "--rows", "300", "--as", "PENGUIN_300")
    written = (_data_dir / "penguin_300-300-0.parquet").stat().st_mtime_ns
    Dataset.objects.filter(name="PENGUIN_300").delete()

    text = run("synthesize_dataset", "-d", "PENGUIN", "--rows", "300", "--as", "PENGUIN_300")

    assert text.endswith("(penguin_300-300-0.parquet kept).\n")
    assert (_data_dir / "penguin_300-300-0.parquet").stat().st_mtime_ns == written
    with pytest.raises(CommandError, match=r"Dataset PENGUIN_300 already exists\."):
        run("synthesize_dataset", "-d", "PENGUIN", "--rows", "100", "--as", "PENGUIN_300")
    assert not (_data_dir / "penguin_300-100-0.parquet").exists()
