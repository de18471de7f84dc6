"""Datasets in Django admin: audited edits, data file uploads and metadata drafted from the data."""

import html
import json
from pathlib import Path

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEntry
from datasets.drafts import DRAFT_LABEL
from datasets.models import Dataset
from tests.conftest import DEMO, demo_metadata

pytestmark = pytest.mark.django_db

PENGUIN_CSV = (DEMO / "datasets" / "penguin.csv").read_bytes()


def dataset_form(dataset, **changes):
    data = {
        "access": dataset.access,
        "path": dataset.path,
        "s3_endpoint_url": "",
        "s3_bucket": "",
        "s3_key": "",
        "s3_credentials_name": "",
        "metadata": json.dumps(dataset.metadata),
    }
    return data | changes


def upload(client, name, content=PENGUIN_CSV, file_name="penguins.csv", metadata=""):
    return client.post(
        "/admin/datasets/dataset/upload/",
        {"dataset_name": name, "file": SimpleUploadedFile(file_name, content), "metadata": metadata},
    )


def test_adding_a_dataset_is_audited(admin_client):
    data = dataset_form(Dataset(path="penguin.csv", metadata=demo_metadata("penguin")), name="PENGUIN")
    response = admin_client.post("/admin/datasets/dataset/add/", data)
    assert response.status_code == 302
    assert Dataset.objects.get(name="PENGUIN").path == "penguin.csv"
    assert AuditEntry.objects.get(action="dataset.add").actor_name == "admin"


def test_editing_metadata_is_audited_old_to_new_and_bumps_the_version(admin_client, penguin):
    metadata = demo_metadata("penguin") | {"maxContributions": 2}
    response = admin_client.post(
        f"/admin/datasets/dataset/{penguin.pk}/change/", dataset_form(penguin, metadata=json.dumps(metadata))
    )
    assert response.status_code == 302
    penguin.refresh_from_db()
    assert (penguin.metadata["maxContributions"], penguin.version) == (2, 2)
    entry = AuditEntry.objects.get(action="dataset.set_metadata")
    assert (entry.details["old"]["maxContributions"], entry.details["new"]["maxContributions"]) == (1, 2)
    assert not AuditEntry.objects.filter(action="dataset.set_source").exists()


def test_changing_the_path_is_audited_and_refuses_leaving_the_data_directory(admin_client, penguin):
    response = admin_client.post(
        f"/admin/datasets/dataset/{penguin.pk}/change/", dataset_form(penguin, path="../secrets.csv")
    )
    assert "The path must stay inside the data directory" in response.content.decode()
    response = admin_client.post(
        f"/admin/datasets/dataset/{penguin.pk}/change/", dataset_form(penguin, path="iris.csv")
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="dataset.set_source")
    assert (entry.details["old"]["path"], entry.details["new"]["path"]) == ("penguin.csv", "iris.csv")


def test_change_page_shows_metadata_as_indented_json(admin_client, penguin):
    page = admin_client.get(f"/admin/datasets/dataset/{penguin.pk}/change/").content.decode()
    assert "&quot;maxContributions&quot;: 1" in page and "\n  &quot;tableSchema&quot;" in page


def test_upload_for_an_existing_dataset_stores_the_file_and_points_the_dataset_at_it(admin_client, penguin, _data_dir):
    response = upload(admin_client, "PENGUIN")

    assert response.status_code == 302 and response["Location"].endswith(f"/{penguin.pk}/change/")
    stored = _data_dir / "uploads" / "PENGUIN.csv"
    assert stored.read_bytes() == PENGUIN_CSV
    penguin.refresh_from_db()
    assert (penguin.path, penguin.version) == ("uploads/PENGUIN.csv", 2)
    entry = AuditEntry.objects.get(action="dataset.upload_file")
    assert entry.details["bytes"] == len(PENGUIN_CSV) and entry.details["original_name"] == "penguins.csv"
    assert AuditEntry.objects.filter(action="dataset.set_source", actor_name="admin").exists()


def test_upload_of_a_new_dataset_with_metadata_registers_it(admin_client, _data_dir):
    response = upload(admin_client, "PENGUIN2", metadata=json.dumps(demo_metadata("penguin")))
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="PENGUIN2")
    assert dataset.path == "uploads/PENGUIN2.csv" and (_data_dir / dataset.path).is_file()
    assert AuditEntry.objects.filter(action="dataset.add").exists()


def test_upload_of_a_parquet_file_keeps_its_type(admin_client, penguin, _data_dir, tmp_path):
    parquet = tmp_path / "penguin.parquet"
    pd.read_csv(DEMO / "datasets" / "penguin.csv").to_parquet(parquet)
    upload(admin_client, "PENGUIN", content=parquet.read_bytes(), file_name="data.parquet")
    penguin.refresh_from_db()
    assert penguin.path == "uploads/PENGUIN.parquet"


@pytest.mark.parametrize(
    ("name", "file_name", "message"),
    [
        ("PENGUIN", "penguin.exe", "Upload a .csv or .parquet file"),
        ("../..", "penguin.csv", "cannot name a file"),
    ],
)
def test_upload_refuses_unsafe_names_and_other_file_types(admin_client, _data_dir, name, file_name, message):
    page = upload(admin_client, name, file_name=file_name).content.decode()
    assert message in page
    assert not (_data_dir / "uploads").exists() or not any((_data_dir / "uploads").iterdir())
    assert not AuditEntry.objects.exists()


def test_upload_larger_than_the_cap_is_refused_and_leaves_no_file(admin_client, penguin, _data_dir, settings):
    settings.LOMAS_ADMIN_UPLOAD_MAX_BYTES = 100
    page = upload(admin_client, "PENGUIN").content.decode()
    assert "larger than the upload limit of 100 bytes" in page
    assert list((_data_dir / "uploads").iterdir()) == []
    penguin.refresh_from_db()
    assert penguin.path == "penguin.csv" and not AuditEntry.objects.exists()


def test_upload_with_invalid_metadata_names_the_field(admin_client):
    page = upload(admin_client, "NEW", metadata='{"tableSchema": {"columns": []}}').content.decode()
    assert "maxContributions" in page and not Dataset.objects.filter(name="NEW").exists()


def test_new_dataset_without_metadata_goes_through_a_reviewed_draft(admin_client, _data_dir):
    response = upload(admin_client, "BIRDS")
    assert response.status_code == 302 and "draft-metadata" in response["Location"]
    assert not Dataset.objects.filter(name="BIRDS").exists()

    page = admin_client.get(response["Location"]).content.decode()
    assert DRAFT_LABEL in page and '<option value="species">species</option>' in page

    drafted = admin_client.post(
        "/admin/datasets/dataset/draft-metadata/",
        {"dataset_name": "BIRDS", "path": "uploads/BIRDS.csv", "privacy_unit": "species"},
    ).content.decode()
    assert DRAFT_LABEL in drafted and "Drafted metadata (not saved yet)" in drafted
    assert "&quot;privacyUnit&quot;: &quot;species&quot;" in drafted
    assert not Dataset.objects.filter(name="BIRDS").exists()

    draft = json.loads(html.unescape(drafted.split('name="metadata"', 1)[1].split(">", 1)[1].split("</textarea>")[0]))
    form = {"dataset_name": "BIRDS", "path": "uploads/BIRDS.csv", "metadata": json.dumps(draft), "save": "1"}
    unreviewed = admin_client.post("/admin/datasets/dataset/draft-metadata/", form).content.decode()
    assert "Tick the review box" in unreviewed and not Dataset.objects.filter(name="BIRDS").exists()

    saved = admin_client.post("/admin/datasets/dataset/draft-metadata/", form | {"reviewed": "on"})
    assert saved.status_code == 302
    birds = Dataset.objects.get(name="BIRDS")
    assert birds.metadata["privacyUnit"] == "species" and birds.path == "uploads/BIRDS.csv"
    assert AuditEntry.objects.get(action="dataset.add").actor_name == "admin"


def test_draft_action_opens_the_draft_page_of_a_local_dataset(admin_client, penguin):
    response = admin_client.post(
        "/admin/datasets/dataset/", {"action": "draft_metadata", "_selected_action": [penguin.pk]}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/datasets/dataset/draft-metadata/?dataset_name=PENGUIN&path=penguin.csv"


def test_draft_page_refuses_files_outside_the_data_directory(admin_client):
    page = admin_client.get(
        "/admin/datasets/dataset/draft-metadata/", {"dataset_name": "X", "path": "../../etc/passwd"}
    ).content.decode()
    assert "Metadata can only be drafted from a file in the data directory" in page
    assert "privacy_unit" not in page


def test_deleting_a_dataset_is_audited(admin_client, penguin):
    response = admin_client.post(f"/admin/datasets/dataset/{penguin.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Dataset.objects.exists()
    assert AuditEntry.objects.get(action="dataset.delete").target == "PENGUIN"


def test_changelist_links_the_upload_page(admin_client, penguin):
    assert 'href="/admin/datasets/dataset/upload/"' in admin_client.get("/admin/datasets/dataset/").content.decode()


def test_upload_path_is_derived_from_the_dataset_name_only():
    from datasets.uploads import upload_relative_path

    assert upload_relative_path(dataset_name="My data", file_name="../../x.CSV") == "uploads/My_data.csv"
    assert Path(upload_relative_path(dataset_name="a/b", file_name="f.parquet")).parent == Path("uploads")
