"""Datasets in Django admin: audited edits, data file uploads and metadata drafted from the data."""

import html
import json
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

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


def new_version(client, dataset, content=PENGUIN_CSV, file_name="penguins.csv", confirm="on"):
    return client.post(
        f"/admin/datasets/dataset/{dataset.pk}/new-version/",
        {"file": SimpleUploadedFile(file_name, content), "confirm": confirm},
    )


def test_upload_under_an_existing_name_is_refused_and_points_to_the_new_version_action(
    admin_client, penguin, _data_dir
):
    page = upload(admin_client, "PENGUIN").content.decode()
    assert "Dataset PENGUIN already exists" in page and "Upload a new version" in page
    penguin.refresh_from_db()
    assert (penguin.path, penguin.version) == ("penguin.csv", 1)
    assert not (_data_dir / "uploads").exists() and not AuditEntry.objects.exists()


def test_new_version_checks_the_file_keeps_the_spend_and_is_audited(admin_client, alice, penguin, _data_dir):
    from budgets.services import budget_charge

    budget_charge(user=alice, dataset=penguin, epsilon=1.5, delta=0.0, job_uid=uuid4())
    page = admin_client.get(f"/admin/datasets/dataset/{penguin.pk}/change/").content.decode()
    assert f'href="/admin/datasets/dataset/{penguin.pk}/new-version/"' in page

    response = new_version(admin_client, penguin)

    assert response.status_code == 302 and response["Location"].endswith(f"/{penguin.pk}/change/")
    assert (_data_dir / "uploads" / "PENGUIN.v2.csv").read_bytes() == PENGUIN_CSV
    penguin.refresh_from_db()
    assert (penguin.path, penguin.version) == ("uploads/PENGUIN.v2.csv", 2)
    assert alice.budgets.get().spent_epsilon == Decimal("1.5")
    entry = AuditEntry.objects.get(action="dataset.new_version")
    assert entry.details["old_path"] == "penguin.csv" and entry.details["rows"] == 344
    assert entry.details["original_name"] == "penguins.csv" and entry.details["version"] == 2


def test_new_version_page_says_what_it_replaces_with_a_destructive_button(admin_client, penguin):
    page = admin_client.get(f"/admin/datasets/dataset/{penguin.pk}/new-version/").content.decode()
    assert "This replaces the data researchers query on PENGUIN." in page
    assert "every budget, what each researcher has spent and the ledger" in page
    assert 'value="Replace the data of PENGUIN" class="lomas-danger"' in page


def test_new_version_needs_the_confirmation_box(admin_client, penguin):
    page = new_version(admin_client, penguin, confirm="").content.decode()
    assert "Tick the box to replace" in page
    penguin.refresh_from_db()
    assert penguin.version == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ((DEMO / "datasets" / "iris.csv").read_bytes(), "lacks the metadata&#x27;s columns"),
        (PENGUIN_CSV.replace(b"39.1", b"391.0", 1), "column bill_length_mm: 1 row(s) outside [30.0, 65.0]"),
        (PENGUIN_CSV.replace(b"Adelie", b"Emperor", 1), "column species: 1 row(s) not among its 3 categories"),
        (PENGUIN_CSV.replace(b"Adelie", b"", 1), "column species: 1 null row(s) where the metadata allows none"),
        (PENGUIN_CSV.replace(b"39.1", b"long", 1), "Column bill_length_mm cannot be read as float64"),
    ],
)
def test_new_version_that_does_not_fit_the_metadata_is_refused_and_leaves_no_file(
    admin_client, penguin, _data_dir, content, message
):
    page = new_version(admin_client, penguin, content=content).content.decode()
    assert "The file does not fit the metadata" in page and message in page
    penguin.refresh_from_db()
    assert (penguin.path, penguin.version) == ("penguin.csv", 1)
    assert list((_data_dir / "uploads").iterdir()) == [] and not AuditEntry.objects.exists()


def test_upload_of_a_new_dataset_with_metadata_registers_it(admin_client, _data_dir):
    response = upload(admin_client, "PENGUIN2", metadata=json.dumps(demo_metadata("penguin")))
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="PENGUIN2")
    assert dataset.path == "uploads/PENGUIN2.csv" and (_data_dir / dataset.path).is_file()
    assert AuditEntry.objects.filter(action="dataset.add").exists()


def test_new_version_as_a_parquet_file_keeps_its_type(admin_client, penguin, _data_dir, tmp_path):
    parquet = tmp_path / "penguin.parquet"
    pd.read_csv(DEMO / "datasets" / "penguin.csv").to_parquet(parquet)
    new_version(admin_client, penguin, content=parquet.read_bytes(), file_name="data.parquet")
    penguin.refresh_from_db()
    assert penguin.path == "uploads/PENGUIN.v2.parquet"


@pytest.mark.parametrize(
    ("name", "file_name", "message"),
    [
        ("PENGUIN", "penguin.exe", "Upload a .csv or .parquet file"),
        ("../..", "penguin.csv", "Invalid dataset name"),
        ("bad name!", "penguin.csv", "Invalid dataset name"),
    ],
)
def test_upload_refuses_unsafe_names_and_other_file_types(admin_client, _data_dir, name, file_name, message):
    page = upload(admin_client, name, file_name=file_name).content.decode()
    assert message in page
    assert not (_data_dir / "uploads").exists() or not any((_data_dir / "uploads").iterdir())
    assert not AuditEntry.objects.exists()


def test_upload_larger_than_the_cap_is_refused_and_leaves_no_file(admin_client, penguin, _data_dir, settings):
    settings.LOMAS_ADMIN_UPLOAD_MAX_BYTES = 100
    page = new_version(admin_client, penguin).content.decode()
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


def test_upload_form_metadata_box_starts_empty(admin_client):
    page = admin_client.get("/admin/datasets/dataset/upload/").content.decode()
    box = page.split('name="metadata"', 1)[1].split(">", 1)[1].split("</textarea>")[0]
    assert box.strip() == ""


def test_adding_a_dataset_named_against_the_rule_is_refused(admin_client):
    data = dataset_form(Dataset(path="penguin.csv", metadata=demo_metadata("penguin")), name="bad name!")
    page = admin_client.post("/admin/datasets/dataset/add/", data).content.decode()
    assert "Invalid dataset name" in page and not Dataset.objects.exists()


def test_drafted_metadata_names_no_server_path(_data_dir):
    from datasets.drafts import metadata_draft

    (_data_dir / "birds.csv").write_bytes(PENGUIN_CSV)
    draft = metadata_draft(relative="birds.csv", privacy_unit="species")
    assert all("/" not in entry or "://" in entry for entry in draft["@context"])
    assert str(_data_dir) not in json.dumps(draft) and "site-packages" not in json.dumps(draft)


def test_columns_are_edited_per_column_and_audited(admin_client, penguin):
    page = admin_client.get(f"/admin/datasets/dataset/{penguin.pk}/change/").content.decode()
    assert '<table id="dataset-columns">' in page and "Advanced: the raw csvw-eo JSON" in page
    columns = penguin.metadata["tableSchema"]["columns"]
    form = {"form-TOTAL_FORMS": len(columns), "form-INITIAL_FORMS": len(columns)}
    for index, column in enumerate(columns):
        form |= {
            f"form-{index}-datatype": column["datatype"],
            f"form-{index}-minimum": column.get("minimum", ""),
            f"form-{index}-maximum": column.get("maximum", ""),
            f"form-{index}-categories": ", ".join(column.get("keyValues", [])),
            f"form-{index}-nullable_proportion": column["nullableProportion"],
        }
    form |= {"form-2-maximum": "70", "form-0-categories": "Adelie, Chinstrap, Gentoo, Emperor"}

    response = admin_client.post(f"/admin/datasets/dataset/{penguin.pk}/columns/", form)

    assert response.status_code == 302
    penguin.refresh_from_db()
    edited = penguin.metadata["tableSchema"]["columns"]
    assert edited[2]["maximum"] == 70 and edited[2]["minimum"] == 30.0
    assert edited[0]["keyValues"] == ["Adelie", "Chinstrap", "Gentoo", "Emperor"]
    assert edited[0]["maxNumPartitions"] == 3  # fields the form does not edit are kept
    entry = AuditEntry.objects.get(action="dataset.set_metadata")
    assert entry.details["old"]["tableSchema"]["columns"][2]["maximum"] == 65.0

    form |= {"form-2-minimum": "80"}
    page = admin_client.post(f"/admin/datasets/dataset/{penguin.pk}/columns/", form).content.decode()
    assert "exceeds maximum" in page
