"""The admin dashboard pages: the service overview and collection import/export."""

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock
from uuid import uuid4

import pytest
import yaml
from django.utils import timezone

from accounts.models import AuditEntry, User
from accounts.services import user_create
from budgets.models import Budget
from budgets.selectors import epsilon_spent_per_day, top_consumers
from budgets.services import budget_charge, budget_grant
from datasets.models import Dataset
from lomas.console.charts import cumulative_charts
from queries.models import Job

pytestmark = pytest.mark.django_db

COLLECTIONS = Path(__file__).resolve().parents[1] / "fixtures" / "collections"


def charge(user, dataset, epsilon, delta=0.0):
    return budget_charge(user=user, dataset=dataset, epsilon=epsilon, delta=delta, job_uid=uuid4())


# --- overview -------------------------------------------------------------------


def test_admin_index_links_the_dashboard_pages(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Lomas dashboard" in page
    assert 'href="/admin/overview/"' in page and 'href="/admin/collections/import/"' in page


def test_overview_needs_a_staff_login(client, alice):
    client.force_login(alice)
    response = client.get("/admin/overview/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_overview_without_spending_says_so(admin_client):
    page = admin_client.get("/admin/overview/").content.decode()
    assert "Service overview" in page
    assert '<td class="status-ok">ok</td>' in page  # database; eager jobs need no broker
    assert "No ε spent in the last 90 days." in page and "No budget spent yet." in page
    assert "cumulative-chart" not in page and "top-consumers-chart" not in page
    assert "No budget is above 80 % spent." in page


def test_overview_charts_spending_and_top_consumers_and_counts_jobs(admin_client, alice, bob, penguin, iris):
    carol = user_create(username="Carol")
    budget_grant(user=carol, dataset=penguin, epsilon=10, delta=0.001)
    charge(alice, penguin, 1.5)
    charge(alice, penguin, 0.5)
    charge(carol, penguin, 0.25)
    charge(bob, iris, 3)
    Job.objects.create(user=alice, dataset=penguin, library="opendp", kind="query", request={})
    Job.objects.create(
        user=bob,
        dataset=iris,
        library="opendp",
        kind="query",
        request={},
        status=Job.Status.FAILED,
        finished_at=timezone.now(),
    )
    Job.objects.create(
        user=bob,
        dataset=iris,
        library="opendp",
        kind="query",
        request={},
        status=Job.Status.FAILED,
        finished_at=timezone.now() - timedelta(days=2),
    )

    page = admin_client.get("/admin/overview/").content.decode()

    assert '<td id="jobs-in-progress">1</td>' in page and '<td id="jobs-failed-24h">1</td>' in page
    assert page.count('class="cumulative-chart') == 2 and page.count("<polyline") == 2  # one chart per dataset
    assert "PENGUIN (ε 2.25)" in page and "IRIS (ε 3)" in page  # captions with 90-day totals
    top = page[page.index('id="top-consumers"') :]
    assert top.index("Alice") < top.index("Carol")  # most ε first
    assert "ε 2</text>" in top and "ε 0.25</text>" in top and "ε 3</text>" in top
    lengths = {
        label: float(width) for width, label in re.findall(r'<rect [^>]*width="([\d.]+)"[^>]*><title>(\w+)', top)
    }
    assert lengths == pytest.approx({"Bob": 270, "Alice": 180, "Carol": 22.5})  # one scale: Bob's 3 ε is the longest
    attention = page[page.index('id="jobs-attention"') :]
    assert attention.count('<td><a href="/admin/queries/job/') == 3  # the job in progress and both failed ones
    spend = page[page.index('id="datasets-spend"') : page.index('id="near-exhaustion"')]
    assert 'title="2.25">2.25</span>' in spend and "no cap" in spend
    assert "cdn" not in page.lower() and '<script src="http' not in page  # renders offline


def test_epsilon_per_day_groups_charges_by_day_and_dataset_within_the_window(alice, penguin):
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now - timedelta(days=3)):
        charge(alice, penguin, 1)
        charge(alice, penguin, 0.5)
    with mock.patch("django.utils.timezone.now", return_value=now - timedelta(days=100)):
        charge(alice, penguin, 4)
    charge(alice, penguin, 0.25)
    today = timezone.localdate()

    spent = epsilon_spent_per_day(days=90, today=today)

    assert spent == {
        "PENGUIN": [(today - timedelta(days=3), Decimal("1.5")), (today, Decimal("0.25"))],
    }
    assert epsilon_spent_per_day(days=2, today=today) == {"PENGUIN": [(today, Decimal("0.25"))]}


def test_top_consumers_lists_the_biggest_spenders_first_and_leaves_out_those_who_spent_nothing(alice, penguin):
    users = [user_create(username=f"user{index}") for index in range(4)]
    for index, user in enumerate(users):
        budget_grant(user=user, dataset=penguin, epsilon=10, delta=0.001)
        if index:
            charge(user, penguin, index)
    assert top_consumers(limit=2) == {"PENGUIN": [("user3", Decimal(3)), ("user2", Decimal(2))]}
    assert [name for name, _ in top_consumers()["PENGUIN"]] == ["user3", "user2", "user1"]


def test_cumulative_charts_add_up_each_day_and_share_one_rounded_axis():
    day = timezone.localdate()
    spent = {"X": [(day, Decimal("0.4")), (day + timedelta(days=2), Decimal("0.1"))], "Y": [(day, Decimal("0.1"))]}
    x_chart, y_chart = cumulative_charts(spent, first_day=day, days=3)
    points = [float(point.split(",")[1]) for point in x_chart.series[0].points.split()]
    height = x_chart.bottom - x_chart.top
    assert [tick.label for tick in x_chart.y_ticks] == ["0", "0.125", "0.25", "0.375", "0.5"]
    assert points == pytest.approx([x_chart.bottom - 0.8 * height, x_chart.bottom - 0.8 * height, x_chart.top])
    assert y_chart.y_ticks == x_chart.y_ticks  # one scale for every dataset
    assert x_chart.series[0].total == "0.5"


def test_budgets_above_80_percent_are_listed(admin_client, alice, bob, penguin, iris):
    charge(alice, penguin, 8.5)
    charge(bob, iris, 1)
    page = admin_client.get("/admin/overview/").content.decode()
    near = page[page.index('id="near-exhaustion"') : page.index('id="jobs"')]
    assert "Alice" in near and "85.0 %" in near and "Bob" not in near


# --- collection import and export ----------------------------------------------------------


def preview(client, path, *, collection="users", mode="add"):
    with path.open("rb") as handle:
        return client.post(
            "/admin/collections/import/", {"collection": collection, "mode": mode, "file": handle}
        ).content.decode()


def confirm(client, page):
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    return client.post("/admin/collections/import/", {"token": token, "confirm": "Confirm import"}, follow=True)


@pytest.mark.parametrize(("layout", "users"), [("v0.4", 5), ("v0.5", 6)])
def test_user_import_previews_then_applies_on_confirmation(admin_client, demo_datasets, layout, users):
    page = preview(admin_client, COLLECTIONS / f"{layout}_user_collection.yaml")

    assert "Preview (dry run): nothing has been changed yet" in page
    assert f"{users} to add, 0 to update, 0 to delete, 0 unchanged" in page
    assert '<tr class="import-add"><td>add</td><td>Alice</td>' in page
    assert not User.objects.filter(username="Alice").exists() and not AuditEntry.objects.exists()

    response = confirm(admin_client, page)

    assert f"Imported the users collection: {users} added, 0 updated, 0 deleted." in response.content.decode()
    alice = User.objects.get(username="Alice")
    budget = Budget.objects.get(user=alice, dataset__name="IRIS")
    assert (budget.initial_epsilon, budget.spent_epsilon) == (Decimal(10), Decimal(1))
    summary = AuditEntry.objects.get(action="collection.import")
    assert (summary.actor_name, summary.target, summary.details["mode"]) == ("admin", "users", "add")
    assert AuditEntry.objects.filter(action="user.add", actor_name="admin").count() == users


def test_clean_import_previews_the_researchers_it_would_delete(admin_client, demo_datasets):
    user_create(username="Zoe")
    page = preview(admin_client, COLLECTIONS / "v0.5_user_collection.yaml", mode="clean")
    assert '<tr class="import-delete"><td>delete</td><td>Zoe</td>' in page
    assert "6 to add, 0 to update, 1 to delete" in page
    assert User.objects.filter(username="Zoe").exists()


def test_clean_import_preview_shows_the_spend_a_deleted_researcher_keeps(admin_client, demo_datasets):
    zoe = user_create(username="Zoe")
    iris = Dataset.objects.get(name="IRIS")
    budget_grant(user=zoe, dataset=iris, epsilon=5, delta=0.001)
    charge(zoe, iris, 1.25)
    page = preview(admin_client, COLLECTIONS / "v0.5_user_collection.yaml", mode="clean")
    assert "Nothing is erased from the ledger" in page
    assert '<tr class="import-delete"><td>delete</td><td>Zoe</td><td></td><td>IRIS ε 1.25, δ 0.0</td></tr>' in page
    confirm(admin_client, page)
    assert Budget.objects.get(user=zoe).spent_epsilon == Decimal("1.25")


def test_overwrite_import_previews_updated_users(admin_client, alice, demo_datasets):
    page = preview(admin_client, COLLECTIONS / "v0.5_user_collection.yaml", mode="overwrite")
    assert '<tr class="import-update"><td>update</td><td>Alice</td>' in page
    assert "<code>datasets_list.PENGUIN.initial_epsilon</code>: 10.0 → 5.0" in page
    assert "<code>datasets_list.IRIS.initial_epsilon</code>: (none) → 10.0" in page
    assert Budget.objects.get(user=alice, dataset__name="PENGUIN").initial_epsilon == Decimal(10)


def test_import_of_invalid_yaml_shows_the_error_and_changes_nothing(admin_client, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("users:\n- user_name: [unclosed\n")
    page = preview(admin_client, broken)
    assert 'class="errornote">Invalid YAML' in page
    assert "Confirm import" not in page


def test_import_naming_an_unknown_dataset_is_refused(admin_client, tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(
        "users:\n- user_name: Eve\n  datasets_list:\n  - dataset_name: NOPE\n"
        "    initial_epsilon: 1\n    initial_delta: 0.1\n"
    )
    page = preview(admin_client, path)
    assert "User Eve: dataset NOPE does not exist." in page
    assert not User.objects.filter(username="Eve").exists()


def test_confirming_without_a_pending_preview_imports_nothing(admin_client):
    response = admin_client.post(
        "/admin/collections/import/", {"token": "forged", "confirm": "Confirm import"}, follow=True
    )
    assert "This preview has expired" in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_dataset_import_reads_metadata_under_the_data_directory(admin_client, _data_dir, tmp_path):
    metadata_dir = _data_dir / "metadata"
    metadata_dir.mkdir()
    (metadata_dir / "penguin.json").write_text((Path("datasets/demo/metadata/penguin.json")).read_text())
    collection = tmp_path / "datasets.yaml"
    collection.write_text(
        "datasets:\n- dataset_name: PENGUIN\n  dataset_access: {database_type: PATH_DB, path: penguin.csv}\n"
        "  metadata_access: {database_type: PATH_DB, path: metadata/penguin.json}\n"
    )
    page = preview(admin_client, collection, collection="datasets")
    assert "1 to add" in page and not Dataset.objects.exists()
    response = confirm(admin_client, page)
    assert "Imported the datasets collection: 1 added" in response.content.decode()
    assert Dataset.objects.get().path == "penguin.csv"
    assert AuditEntry.objects.filter(action="dataset.add", actor_name="admin").exists()


def test_export_downloads_reimportable_yaml_without_secrets(admin_client, alice):
    response = admin_client.get("/admin/collections/export/users/")
    assert response["Content-Type"] == "application/yaml"
    assert 'filename="users.yaml"' in response["Content-Disposition"]
    document = yaml.safe_load(response.content)
    assert document["users"][0]["id"] == {"name": "Alice", "email": "alice@example.com"}
    assert b"client_secret" not in response.content and b"password" not in response.content


def test_export_of_datasets_as_a_zip_holds_the_metadata_files(admin_client, penguin):
    import io
    import zipfile

    response = admin_client.get("/admin/collections/export/datasets.zip")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["datasets.yaml", "metadata/PENGUIN.json"]


def test_collection_pages_are_for_lomas_admins_only(client, db):
    staff = User.objects.create_user(username="operator", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/collections/import/").status_code == 403
    assert client.get("/admin/collections/export/users/").status_code == 403


def upload_preview(client, name, content, *, collection="datasets", mode="add"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/admin/collections/import/",
        {"collection": collection, "mode": mode, "file": SimpleUploadedFile(name, content)},
    ).content.decode()


@pytest.mark.parametrize("export", ["/admin/collections/export/datasets/", "/admin/collections/export/datasets.zip"])
def test_datasets_export_imports_back(admin_client, penguin, iris, export):
    exported = admin_client.get(export).content
    before = {dataset.name: (dataset.path, dataset.metadata) for dataset in Dataset.objects.all()}
    Dataset.objects.all().delete()

    page = upload_preview(admin_client, "datasets.zip" if export.endswith(".zip") else "datasets.yaml", exported)

    assert "2 to add, 0 to update, 0 to delete" in page
    confirm(admin_client, page)
    assert {dataset.name: (dataset.path, dataset.metadata) for dataset in Dataset.objects.all()} == before


def test_import_preview_shows_old_and_new_values(admin_client, penguin):
    document = yaml.safe_load(admin_client.get("/admin/collections/export/datasets/").content)
    document["datasets"][0]["dataset_access"]["path"] = "penguin_2025.csv"
    document["datasets"][0]["metadata"]["maxContributions"] = 3
    page = upload_preview(admin_client, "datasets.yaml", yaml.safe_dump(document).encode(), mode="overwrite")
    assert "<code>dataset_access.path</code>: &quot;penguin.csv&quot; → &quot;penguin_2025.csv&quot;" in page
    assert "<code>metadata.maxContributions</code>: 1 → 3" in page
    penguin.refresh_from_db()
    assert penguin.path == "penguin.csv" and not AuditEntry.objects.exists()


def test_clean_import_looks_destructive_and_says_the_ledger_is_kept(admin_client, penguin, iris):
    document = yaml.safe_load(admin_client.get("/admin/collections/export/datasets/").content)
    document["datasets"] = [entry for entry in document["datasets"] if entry["dataset_name"] == "PENGUIN"]
    page = upload_preview(admin_client, "datasets.yaml", yaml.safe_dump(document).encode(), mode="clean")
    warning = page[page.index('id="import-destructive"') :]
    assert "This import deletes 1 dataset(s)" in warning and "the budget ledger is never erased" in warning
    assert 'value="Delete 1 and import" class="lomas-danger"' in page
    assert Dataset.objects.filter(name="IRIS").exists()


def test_dataset_names_against_the_rule_are_refused_in_collection_files(admin_client, penguin):
    document = yaml.safe_load(admin_client.get("/admin/collections/export/datasets/").content)
    document["datasets"][0]["dataset_name"] = "bad name!"
    page = upload_preview(admin_client, "datasets.yaml", yaml.safe_dump(document).encode())
    assert "Invalid dataset name &#x27;bad name!&#x27;" in page
