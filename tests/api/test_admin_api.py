"""Admin API (spec §1.6): every route as admin, as a researcher (403) and anonymous (403), and its audit entry."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.models import AuditEntry, User
from budgets.models import Budget
from datasets.models import Dataset

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "tests" / "fixtures" / "collections"
METADATA = ROOT / "datasets" / "demo" / "metadata"

ROUTES = [
    ("get", "/api/datasets"),
    ("get", "/api/users"),
    ("post", "/api/users"),
    ("post", "/api/usersfile"),
    ("delete", "/api/users/Alice"),
    ("delete", "/api/collections/queries_archive"),
    ("post", "/api/dataset/bulk"),
    ("post", "/api/dataset"),
    ("delete", "/api/dataset/PENGUIN"),
    ("patch", "/api/users/Alice/dataset"),
    ("patch", "/api/users/Alice/dataset/del"),
    ("patch", "/api/users/Alice/dataset/budget"),
    ("get", "/api/users/Alice/archive"),
    ("get", "/api/dataset/PENGUIN"),
    ("get", "/api/dataset/PENGUIN/metadata"),
    ("patch", "/api/dataset/PENGUIN/metadata"),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_researchers_are_refused(alice_api, method, route):
    response = getattr(alice_api, method)(route, {}, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "type": "UnauthorizedAccessException",
        "message": "Only admin users can query this endpoint.",
    }


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_anonymous_callers_are_refused(db, method, route):
    response = getattr(APIClient(), method)(route, {}, format="json")
    assert response.status_code == 403
    assert response.json() == {"type": "UnauthorizedAccessException", "message": "Failed bearer token verification."}


def test_list_datasets_and_users(admin_api, alice, bob):
    assert admin_api.get("/api/datasets").json() == ["IRIS", "PENGUIN"]
    users = admin_api.get("/api/users").json()
    assert [user["id"]["name"] for user in users] == ["Alice", "Bob", "admin"]
    assert users[0]["datasets_list"][0]["dataset_name"] == "PENGUIN"
    assert users[2]["admin"] is True


def test_post_user_uses_only_name_and_email(admin_api, penguin):
    body = {
        "id": {"name": "Carol", "email": "carol@example.com", "client_secret": "x"},
        "may_query": False,
        "admin": True,
        "datasets_list": [{"dataset_name": "PENGUIN", "initial_epsilon": 1, "initial_delta": 0}],
    }
    response = admin_api.post("/api/users", body, format="json")
    assert (response.status_code, response.json()) == (200, None)
    carol = User.objects.get(username="Carol")
    assert (carol.email, carol.is_staff, carol.lomas_profile.may_query) == ("carol@example.com", False, True)
    assert not Budget.objects.filter(user=carol).exists()
    entry = AuditEntry.objects.get(action="user.add")
    assert (entry.actor.username, entry.actor_name, entry.target) == ("admin", "admin", "Carol")
    assert admin_api.post("/api/users", body, format="json").json()["message"] == "User Carol already exists."
    assert admin_api.post("/api/users", {"id": {}}, format="json").status_code == 400


def test_usersfile_dry_run_then_load(admin_api, penguin, iris):
    content = (
        "users:\n- id: {name: Carol, email: carol@example.com, client_secret: carol}\n  may_query: true\n"
        "  datasets_list:\n  - {dataset_name: PENGUIN, initial_epsilon: 5, initial_delta: 0.001,"
        " total_spent_epsilon: 0.5, total_spent_delta: 0}\n- user_name: Dave\n  may_query: false\n"
    )

    def upload(query: str = ""):
        return admin_api.post(f"/api/usersfile{query}", {"file": SimpleUploadedFile("u.yaml", content.encode())})

    preview = upload("?dry_run=true")
    assert preview.status_code == 200
    assert preview.json() == [
        {"action": "add", "collection": "users", "name": "Carol"},
        {"action": "add", "collection": "users", "name": "Dave"},
    ]
    assert not User.objects.filter(username="Carol").exists()
    assert (upload("?clean=false").status_code, upload().json()) == (200, None)
    budget = Budget.objects.get(user__username="Carol")
    assert (float(budget.initial_epsilon), float(budget.spent_epsilon)) == (5.0, 0.5)
    assert not User.objects.get(username="Dave").lomas_profile.may_query
    assert admin_api.post("/api/usersfile", {}).json()["message"] == (
        "Invalid request: a multipart 'file' upload is required."
    )
    bad = admin_api.post("/api/usersfile?clean=maybe", {"file": SimpleUploadedFile("u.yaml", content.encode())})
    assert bad.json()["message"] == "Invalid request: clean must be true or false, not 'maybe'."


def test_delete_user(admin_api, alice):
    assert admin_api.delete("/api/users/Alice").json() is None
    assert not User.objects.get(username="Alice").is_active  # a tombstone: the ledger stays
    response = admin_api.delete("/api/users/Alice")
    assert response.status_code == 403
    assert response.json()["message"].startswith("User Alice does not exist.")
    assert AuditEntry.objects.filter(action="user.delete", target="Alice").count() == 1


def test_delete_collection(admin_api, alice):
    assert admin_api.delete("/api/collections/users").json() is None
    assert not User.objects.get(username="Alice").is_active and Budget.objects.get(user__username="Alice").is_revoked
    refused = admin_api.delete("/api/collections/datasets")
    assert refused.status_code == 400 and refused.json()["message"].startswith("Dataset PENGUIN cannot be deleted")
    assert admin_api.delete("/api/collections/queries_archive").status_code == 200
    assert admin_api.delete("/api/collections/moon").status_code == 400


def test_dataset_bulk_and_single_add(admin_api, _data_dir):
    content = (
        (COLLECTIONS / "dataset_collection.yaml").read_text().replace("../../../datasets/demo/metadata", str(METADATA))
    )
    response = admin_api.post(
        "/api/dataset/bulk", {"file": SimpleUploadedFile("d.yaml", content.encode()), "clean": "true"}
    )
    assert (response.status_code, response.json()) == (200, None)
    assert Dataset.objects.count() == 7
    (_data_dir / "moon.json").write_text((METADATA / "penguin.json").read_text())
    body = {
        "dataset_name": "MOON",
        "database_type": "PATH_DB",
        "metadata_database_type": "PATH_DB",
        "dataset_path": "penguin.csv",
        "metadata_path": "moon.json",
    }
    assert admin_api.post("/api/dataset", body, format="json").json() is None
    assert Dataset.objects.get(name="MOON").path == "penguin.csv"
    assert admin_api.post("/api/dataset", body, format="json").json()["message"] == "Dataset MOON already exists."


def test_dataset_info_metadata_and_delete(admin_api, penguin):
    assert admin_api.get("/api/dataset/PENGUIN").json() == {
        "dataset_name": "PENGUIN",
        "dataset_access": {"database_type": "PATH_DB", "path": "penguin.csv"},
        "metadata_access": {"database_type": "PATH_DB", "path": "metadata/PENGUIN.json"},
    }
    metadata = admin_api.get("/api/dataset/PENGUIN/metadata").json()
    assert metadata["max_contributions"] == 1
    document = dict(penguin.metadata, maxContributions=2)
    upload = SimpleUploadedFile("m.json", json.dumps(document).encode())
    assert admin_api.patch("/api/dataset/PENGUIN/metadata", {"file": upload}, format="multipart").json() is None
    penguin.refresh_from_db()
    assert (penguin.metadata["maxContributions"], penguin.version) == (2, 2)
    audit = AuditEntry.objects.get(action="dataset.set_metadata")
    assert (audit.details["old"]["maxContributions"], audit.details["new"]["maxContributions"]) == (1, 2)
    bad = SimpleUploadedFile("m.json", json.dumps(dict(document, maxContributions=0)).encode())
    response = admin_api.patch("/api/dataset/PENGUIN/metadata", {"file": bad}, format="multipart")
    assert response.status_code == 400
    assert response.json()["message"].startswith("Dataset PENGUIN: invalid metadata: Table field 'maxContributions'")
    assert admin_api.delete("/api/dataset/PENGUIN").json() is None
    assert admin_api.get("/api/dataset/PENGUIN").status_code == 400


def test_grant_budget_and_revoke(admin_api, alice, iris):
    assert admin_api.patch("/api/users/Alice/dataset", {"dataset_name": "IRIS"}, format="json").json() is None
    budget = Budget.objects.get(user=alice, dataset=iris)
    assert (budget.initial_epsilon, budget.initial_delta) == (0, 0)
    body = {"dataset_name": "IRIS", "epsilon": 2.0, "delta": 0.001}
    assert admin_api.patch("/api/users/Alice/dataset/budget", body, format="json").json() is None
    budget.refresh_from_db()
    assert (float(budget.initial_epsilon), float(budget.initial_delta)) == (2.0, 0.001)
    zero = admin_api.patch("/api/users/Alice/dataset/budget", dict(body, epsilon=0), format="json")
    assert zero.status_code == 400
    assert admin_api.patch("/api/users/Alice/dataset/del", {"dataset_name": "IRIS"}, format="json").json() is None
    assert Budget.objects.get(user=alice, dataset=iris).is_revoked
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert actions == ["budget.grant", "budget.set_initial", "budget.revoke"]


def test_revoking_a_spent_budget_keeps_its_ledger(admin_api, alice, penguin):
    from uuid import uuid4

    from budgets.models import LedgerEntry
    from budgets.services import budget_charge

    budget_charge(user=alice, dataset=penguin, epsilon=1, delta=0, job_uid=uuid4())
    rows = LedgerEntry.objects.count()
    revoked = admin_api.patch("/api/users/Alice/dataset/del", {"dataset_name": "PENGUIN"}, format="json")
    assert (revoked.status_code, revoked.json()) == (200, None)
    budget = Budget.objects.get(user=alice)
    assert budget.is_revoked and budget.spent_epsilon == 1 and LedgerEntry.objects.count() == rows
    again = admin_api.patch("/api/users/Alice/dataset/del", {"dataset_name": "PENGUIN"}, format="json")
    assert again.status_code == 403  # no access left to revoke


def test_dataset_budget_route_caps_the_dataset_never_below_its_total_spend(admin_api, alice, penguin):
    from uuid import uuid4

    from budgets.services import budget_charge

    budget_charge(user=alice, dataset=penguin, epsilon=2, delta=1e-5, job_uid=uuid4())
    uncapped = admin_api.get("/api/dataset/PENGUIN/budget").json()
    assert uncapped == {"dataset_name": "PENGUIN", "epsilon": None, "delta": None, "total_spent_epsilon": 2.0,
                        "total_spent_delta": 1e-5, "remaining_epsilon": None, "remaining_delta": None}  # fmt: skip
    below = admin_api.patch("/api/dataset/PENGUIN/budget", {"epsilon": 1.0, "delta": 0.001}, format="json")
    assert below.status_code == 400 and below.json()["message"].startswith(
        "The budget of dataset PENGUIN cannot be set below what its researchers spent in total (epsilon 2"
    )
    set_cap = admin_api.patch("/api/dataset/PENGUIN/budget", {"epsilon": 5.0, "delta": 0.001}, format="json")
    assert (set_cap.status_code, set_cap.json()) == (200, None)
    capped = admin_api.get("/api/dataset/PENGUIN/budget").json()
    assert (capped["epsilon"], capped["remaining_epsilon"], capped["remaining_delta"]) == (5.0, 3.0, 0.00099)
    assert admin_api.patch("/api/dataset/PENGUIN/budget", {"epsilon": -1, "delta": 0}, format="json").status_code == 400


def test_user_archive(admin_api, alice, penguin):
    from queries.models import QueryArchive

    QueryArchive.objects.create(
        user=alice,
        dataset=penguin,
        user_name="Alice",
        dataset_name="PENGUIN",
        dp_library="smartnoise_sql",
        job_uid="00000000-0000-0000-0000-000000000001",
        client_input={"query_str": "SELECT 1"},
        response={},
    )
    archives = admin_api.get("/api/users/Alice/archive").json()
    assert [(record["dataset_name"], record["dp_library"]) for record in archives] == [("PENGUIN", "smartnoise_sql")]
    assert admin_api.get("/api/users/Nobody/archive").status_code == 403


def test_admin_routes_render_in_the_browsable_api(admin_api, penguin):
    response = admin_api.get("/api/dataset/PENGUIN", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Dataset Detail" in response.content
