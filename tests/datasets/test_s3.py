"""S3 datasets against moto's standalone server: reads, registration, real queries, secrets kept out of sight."""

import json
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEntry
from accounts.services import user_create
from budgets.models import LedgerEntry
from budgets.services import budget_grant
from datasets.connectors import get_connector
from datasets.connectors.base import DatasetUnavailable
from datasets.connectors.local import PathConnector
from datasets.connectors.s3 import S3Connector
from datasets.models import Dataset
from datasets.services import dataset_create
from tests.conftest import DEMO, api_client_for, demo_metadata
from tests.datasets.conftest import CREDENTIALS_NAME, S3Server

pytestmark = pytest.mark.django_db

COUNT = "SELECT COUNT(*) AS n FROM df"


def upload_penguin(moto_s3: S3Server, bucket: str) -> pd.DataFrame:
    """Put penguin.csv, penguin.parquet and penguin.json in the bucket; returns the typed frame."""
    penguin = demo_metadata("penguin")
    expected = PathConnector(str(DEMO / "datasets" / "penguin.csv"), metadata=penguin).get_pandas()
    parquet = BytesIO()
    expected.to_parquet(parquet, index=False)
    client = moto_s3.client()
    client.put_object(Bucket=bucket, Key="data/penguin.csv", Body=(DEMO / "datasets" / "penguin.csv").read_bytes())
    client.put_object(Bucket=bucket, Key="data/penguin.parquet", Body=parquet.getvalue())
    client.put_object(Bucket=bucket, Key="metadata/penguin.json", Body=json.dumps(penguin).encode())
    return expected


def s3_dataset(moto_s3: S3Server, bucket: str, *, key: str = "data/penguin.csv", name: str = "PENGUIN") -> Dataset:
    return dataset_create(
        name=name,
        metadata=demo_metadata("penguin"),
        access=Dataset.Access.S3,
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_bucket=bucket,
        s3_key=key,
        s3_credentials_name=CREDENTIALS_NAME,
    )


def researcher_on(dataset: Dataset) -> Any:
    user = user_create(username="Carol", email="carol@example.com", password="carol-password")
    budget_grant(user=user, dataset=dataset, epsilon=10, delta=0.005)
    return user


def run_query(api: Any, submit: Any, dataset_name: str = "PENGUIN") -> Any:
    body = {"dataset_name": dataset_name, "query_str": COUNT, "epsilon": 1.0, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True}  # fmt: skip
    accepted = submit(api, "smartnoise_sql_query", body)
    assert accepted.status_code == 202, accepted.content
    return api.get(f"/api/status/{accepted.json()['uid']}")


@pytest.mark.parametrize("key", ["data/penguin.csv", "data/penguin.parquet"])
def test_csv_and_parquet_objects_are_read_like_local_files(moto_s3, s3_bucket, key):
    expected = upload_penguin(moto_s3, s3_bucket)
    connector = S3Connector(
        endpoint_url=moto_s3.endpoint_url,
        bucket=s3_bucket,
        key=key,
        credentials_name=CREDENTIALS_NAME,
        metadata=demo_metadata("penguin"),
    )

    pd.testing.assert_frame_equal(connector.get_pandas(), expected)
    assert connector.fingerprint()[2] == moto_s3.client().head_object(Bucket=s3_bucket, Key=key)["ContentLength"]


def test_add_dataset_registers_an_s3_dataset_with_its_metadata_read_from_s3(moto_s3, s3_bucket):
    upload_penguin(moto_s3, s3_bucket)
    out = StringIO()
    call_command(
        "add_dataset",
        *("-d", "PENGUIN", "-db", "S3_DB", "-s3b", s3_bucket, "-s3k", "data/penguin.parquet"),
        *("-s3_url", moto_s3.endpoint_url, "-cred_n", CREDENTIALS_NAME),
        *("-m_db", "S3_DB", "-m_s3b", s3_bucket, "-m_s3k", "metadata/penguin.json"),
        *("-m_s3_url", moto_s3.endpoint_url),
        *("-m_s3_ak", moto_s3.access_key_id, "-m_s3_sak", moto_s3.secret_access_key),
        stdout=out,
    )

    assert out.getvalue() == f"Dataset PENGUIN added (s3://{s3_bucket}/data/penguin.parquet).\n"
    dataset = Dataset.objects.get(name="PENGUIN")
    assert dataset.metadata == demo_metadata("penguin")
    assert (dataset.s3_bucket, dataset.s3_key, dataset.s3_credentials_name) == (
        s3_bucket,
        "data/penguin.parquet",
        CREDENTIALS_NAME,
    )
    assert len(get_connector(dataset).get_pandas()) == 344
    stored = json.dumps([*Dataset.objects.values(), *AuditEntry.objects.values()], default=str)
    assert moto_s3.secret_access_key not in stored


def test_add_dataset_reads_s3_metadata_with_a_named_credentials_entry(moto_s3, s3_bucket):
    upload_penguin(moto_s3, s3_bucket)
    call_command(
        "add_dataset",
        *("--dataset_name", "PENGUIN", "--database_type", "S3_DB", "--bucket", s3_bucket, "--key", "data/penguin.csv"),
        *("--endpoint_url", moto_s3.endpoint_url, "--credentials_name", CREDENTIALS_NAME),
        *(
            "--metadata_database_type",
            "S3_DB",
            "--metadata_bucket",
            s3_bucket,
            "--metadata_key",
            "metadata/penguin.json",
        ),
        *("--metadata_endpoint_url", moto_s3.endpoint_url, "--metadata_credentials_name", CREDENTIALS_NAME),
        stdout=StringIO(),
    )

    assert Dataset.objects.get(name="PENGUIN").metadata["maxContributions"] == 1


@pytest.mark.parametrize(
    ("metadata_args", "message"),
    [
        (["-m_s3k", "metadata/absent.json", "-m_cred_n", CREDENTIALS_NAME], r"\(NoSuchKey\)"),
        (["-m_s3k", "metadata/penguin.json", "-m_s3_ak", "x", "-m_s3_sak", "y"], r"\(InvalidAccessKeyId\)"),
        (["-m_s3k", "metadata/penguin.json", "-m_cred_n", "nobody"], "Could not find credentials"),
        (["-m_s3k", "data/penguin.csv", "-m_cred_n", CREDENTIALS_NAME], "is not JSON"),
    ],
)
def test_add_dataset_with_unreadable_s3_metadata_fails_and_writes_nothing(moto_s3, s3_bucket, metadata_args, message):
    upload_penguin(moto_s3, s3_bucket)

    with pytest.raises(CommandError, match=rf"^Dataset PENGUIN: .*{message}"):
        call_command(
            "add_dataset",
            *("-d", "PENGUIN", "-db", "S3_DB", "-s3b", s3_bucket, "-s3k", "data/penguin.csv"),
            *("-cred_n", CREDENTIALS_NAME, "-m_db", "S3_DB", "-m_s3b", s3_bucket),
            *("-m_s3_url", moto_s3.endpoint_url, *metadata_args),
            stdout=StringIO(),
        )
    assert not Dataset.objects.exists()


def test_a_dataset_collection_may_keep_its_metadata_on_s3(moto_s3, s3_bucket, tmp_path: Path):
    upload_penguin(moto_s3, s3_bucket)
    access = {"endpoint_url": moto_s3.endpoint_url, "bucket": s3_bucket, "credentials_name": CREDENTIALS_NAME}
    collection = {
        "datasets": [
            {
                "dataset_name": "PENGUIN",
                "dataset_access": {"database_type": "S3_DB", "key": "data/penguin.csv", **access},
                "metadata_access": {"database_type": "S3_DB", "key": "metadata/penguin.json", **access},
            }
        ]
    }
    (tmp_path / "datasets.yaml").write_text(json.dumps(collection), encoding="utf-8")  # JSON is YAML

    call_command("add_datasets_via_yaml", "-yf", str(tmp_path / "datasets.yaml"), stdout=StringIO())

    assert Dataset.objects.get(name="PENGUIN").metadata == demo_metadata("penguin")


@pytest.mark.parametrize("key", ["data/penguin.csv", "data/penguin.parquet"])
def test_a_real_query_runs_on_s3_data_and_is_charged(moto_s3, s3_bucket, submit, key):
    upload_penguin(moto_s3, s3_bucket)
    dataset = s3_dataset(moto_s3, s3_bucket, key=key)
    api = api_client_for(researcher_on(dataset))

    status = run_query(api, submit)

    assert status.status_code == 200, status.content
    response = status.json()["result"]
    assert response["epsilon"] == 1.0
    [[noisy_count]] = response["result"]["df"]["data"]
    assert 300 < noisy_count < 390  # 344 rows, Laplace noise of scale 1
    assert LedgerEntry.objects.filter(budget__dataset=dataset, kind=LedgerEntry.Kind.CHARGE).count() == 1


def test_s3_keys_are_shown_neither_in_config_nor_admin_nor_dataset_info(
    moto_s3, s3_bucket, admin_api, admin_user, client
):
    upload_penguin(moto_s3, s3_bucket)
    dataset = s3_dataset(moto_s3, s3_bucket)
    client.force_login(admin_user)

    pages = [
        admin_api.get("/api/config"),
        admin_api.get("/api/dataset/PENGUIN"),
        client.get(f"/admin/datasets/dataset/{dataset.pk}/change/"),
        client.get("/admin/datasets/dataset/"),
    ]

    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    assert CREDENTIALS_NAME in pages[0].content.decode()  # the entry's name is shown, its keys are not
    for page in pages:
        assert moto_s3.secret_access_key not in page.content.decode()
        assert moto_s3.access_key_id not in page.content.decode()


@pytest.mark.parametrize("problem", ["unknown bucket", "bad secret key"])
def test_an_unreadable_object_fails_the_query_with_a_bare_500(moto_s3, s3_bucket, submit, settings, problem):
    upload_penguin(moto_s3, s3_bucket)
    dataset = s3_dataset(moto_s3, s3_bucket)
    if problem == "unknown bucket":
        Dataset.objects.filter(pk=dataset.pk).update(s3_bucket="lomas-no-such-bucket")
    else:
        settings.LOMAS_S3_CREDENTIALS = {CREDENTIALS_NAME: {**moto_s3.credentials(), "secret_access_key": "wrong"}}
    user = researcher_on(dataset)

    status = run_query(api_client_for(user), submit)

    assert status.status_code == 500
    assert status.json()["status"] == "failed"
    assert status.json()["error"] == {"type": "InternalServerException"}
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    user.lomas_profile.refresh_from_db()
    assert user.lomas_profile.may_query is True


def test_a_missing_credentials_entry_is_a_500_at_submission(moto_s3, s3_bucket, submit, settings):
    dataset = s3_dataset(moto_s3, s3_bucket)
    settings.LOMAS_S3_CREDENTIALS = {}
    api = api_client_for(researcher_on(dataset))

    response = submit(api, "smartnoise_sql_query", {"dataset_name": "PENGUIN", "query_str": COUNT, "epsilon": 1.0,
                                                    "delta": 1e-5, "mechanisms": {}, "postprocess": True})  # fmt: skip

    assert response.status_code == 500
    assert response.json() == {"type": "InternalServerException"}
    with pytest.raises(DatasetUnavailable, match=r"^Could not find credentials for private dataset"):
        get_connector(dataset)
