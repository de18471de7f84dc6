"""User commands (spec §6.2): add, delete, flags, listings and YAML collections in both layouts."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEntry, User
from accounts.selectors import user_may_query
from budgets.models import Budget, LedgerEntry

pytestmark = pytest.mark.django_db

COLLECTIONS = Path(__file__).resolve().parents[1] / "fixtures" / "collections"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_datasets(db):
    run("add_datasets_via_yaml", "-yf", str(COLLECTIONS / "dataset_collection.yaml"))


def test_add_user_creates_a_researcher_who_may_query_and_audits_it(db):
    assert run("add_user", "-u", "Carol", "-m", "carol@example.com", "-s", "carol") == "User Carol added.\n"
    carol = User.objects.get(username="Carol")
    assert carol.email == "carol@example.com" and carol.check_password("carol") and not carol.is_staff
    assert user_may_query(user=carol)
    entry = AuditEntry.objects.get(action="user.add")
    assert (entry.target, entry.actor, entry.actor_name.startswith("manage.py")) == ("Carol", None, True)


def test_add_user_twice_fails_with_a_clear_message(alice):
    with pytest.raises(CommandError, match=r"^User Alice already exists."):
        run("add_user", "--user", "Alice", "--email", "a@example.com")
    assert not AuditEntry.objects.exists()


def test_add_user_with_budget_is_one_transaction(penguin):
    run("add_user_with_budget", "-u", "Carol", "-m", "c@example.com", "-d", "PENGUIN", "-e", "2.5", "-del", "0.001")
    budget = Budget.objects.get(user__username="Carol", dataset=penguin)
    assert (float(budget.initial_epsilon), float(budget.initial_delta)) == (2.5, 0.001)
    with pytest.raises(CommandError, match=r"^Dataset MOON does not exist"):
        run("add_user_with_budget", "-u", "Dan", "-m", "d@example.com", "-d", "MOON", "-e", "1", "-del", "0")
    with pytest.raises(CommandError, match=r"epsilon must be a finite non-negative number"):
        run("add_user_with_budget", "-u", "Dan", "-m", "d@example.com", "-d", "PENGUIN", "-e", "-1", "-del", "0")
    assert not User.objects.filter(username="Dan").exists()


def test_del_user_tombstones_the_user_and_keeps_their_ledger(alice, penguin):
    from uuid import uuid4

    from budgets.services import budget_charge

    budget_charge(user=alice, dataset=penguin, epsilon=0.5, delta=0.0, job_uid=uuid4())
    rows = LedgerEntry.objects.count()
    assert run("del_user", "-u", "Alice") == (
        "User Alice deleted; nothing is erased from the ledger (kept: PENGUIN ε 0.5, δ 0).\n"
    )
    tombstone = User.objects.get(username="Alice")
    assert not tombstone.is_active and tombstone.deleted_at is not None and not hasattr(tombstone, "lomas_profile")
    assert Budget.objects.get(user=alice).is_revoked and LedgerEntry.objects.count() == rows
    details = AuditEntry.objects.get(action="user.delete", target="Alice").details
    assert details["budgets"][0]["spent_epsilon"] == 0.5 and details["budgets"][0]["revoked"] is True
    assert details["ledger_kept"] == [{"dataset": "PENGUIN", "spent_epsilon": 0.5, "spent_delta": 0.0}]
    with pytest.raises(CommandError, match=r"^User Alice does not exist"):
        run("get_user", "-u", "Alice")


def test_a_user_deleted_then_added_again_carries_what_they_spent(alice, penguin):
    from uuid import uuid4

    from budgets.services import budget_charge

    budget_charge(user=alice, dataset=penguin, epsilon=1.0, delta=0.0, job_uid=uuid4())
    run("del_user", "-u", "Alice")
    run("add_user_with_budget", "-u", "Alice", "-m", "alice@example.org", "-d", "PENGUIN", "-e", "10", "-del", "0.005")
    (entry,) = json.loads(run("get_user", "-u", "Alice", "--json"))["datasets_list"]
    assert (entry["total_spent_epsilon"], entry["initial_epsilon"]) == (1.0, 10.0)
    assert User.objects.get(username="Alice").is_active
    run("del_user", "-u", "Alice")
    run("add_user_with_budget", "-u", "Alice", "-m", "a@example.org", "-d", "PENGUIN", "-e", "0.5", "-del", "0")
    (entry,) = json.loads(run("get_user", "-u", "Alice", "--json"))["datasets_list"]
    assert (entry["initial_epsilon"], entry["total_spent_epsilon"]) == (1.0, 1.0)  # never below what was spent


def test_unknown_user_is_a_command_error(db):
    for command in ("del_user", "get_user", "get_list_of_datasets_from_user"):
        with pytest.raises(CommandError, match=r"^User Nobody does not exist"):
            run(command, "-u", "Nobody")


def test_set_may_query_unblocks_a_user_and_audits_old_and_new(alice):
    run("set_may_query", "-u", "Alice", "-v", "False")
    assert not user_may_query(user=alice)
    run("set_may_query", "-u", "Alice", "--value", "True")
    assert user_may_query(user=alice)
    details = [entry.details for entry in AuditEntry.objects.filter(action="user.set_may_query")]
    assert details == [{"old": True, "new": False}, {"old": False, "new": True}]


def test_set_may_query_refuses_other_values(alice):
    with pytest.raises(CommandError):
        run("set_may_query", "-u", "Alice", "-v", "maybe")


def test_get_user_text_and_json(alice):
    text = run("get_user", "-u", "Alice")
    assert text.startswith("Alice <alice@example.com> may_query: True, admin: False")
    assert "PENGUIN: initial ε 10, δ 0.005; spent ε 0, δ 0" in text
    data = json.loads(run("get_user", "-u", "Alice", "--json"))
    assert data == {
        "id": {"name": "Alice", "email": "alice@example.com"},
        "may_query": True,
        "admin": False,
        "datasets_list": [
            {
                "dataset_name": "PENGUIN",
                "initial_epsilon": 10.0,
                "initial_delta": 0.005,
                "total_spent_epsilon": 0.0,
                "total_spent_delta": 0.0,
            }
        ],
    }


def test_listings(alice, bob):
    assert run("get_list_of_users") == "Alice\nBob\n"
    assert json.loads(run("get_list_of_users", "--json")) == ["Alice", "Bob"]
    assert json.loads(run("get_list_of_datasets_from_user", "-u", "Bob", "--json")) == ["IRIS"]


def collection_without(path: str, *, user: str, directory: Path) -> str:
    """A copy of a v0.5 user collection without one user."""
    import yaml

    document = yaml.safe_load(Path(path).read_text())
    document["users"] = [entry for entry in document["users"] if (entry.get("id") or {}).get("name") != user]
    copy = directory / "users.yaml"
    copy.write_text(yaml.safe_dump(document))
    return str(copy)


@pytest.mark.parametrize("layout", ["v0.4", "v0.5"])
def test_add_users_via_yaml_loads_both_layouts_with_spent_as_seed_entries(demo_datasets, layout):
    data = json.loads(run("add_users_via_yaml", "-yf", str(COLLECTIONS / f"{layout}_user_collection.yaml"), "--json"))
    assert data["dry_run"] is False
    assert {change["action"] for change in data["changes"]} == {"add"}
    alice = User.objects.get(username="Alice")
    budget = Budget.objects.get(user=alice, dataset__name="IRIS")
    assert (float(budget.initial_epsilon), float(budget.spent_epsilon), float(budget.spent_delta)) == (10, 1, 1e-6)
    grant, seed = LedgerEntry.objects.filter(budget=budget)
    assert grant.kind == LedgerEntry.Kind.GRANT and float(grant.epsilon) == 10.0
    assert seed.kind == LedgerEntry.Kind.SEED and float(seed.epsilon) == 1.0
    if layout == "v0.5":
        assert alice.email == "alice@example.com" and alice.check_password("alice")
        assert User.objects.filter(username="Mr. Corona").exists()  # a user_name entry in a 0.5 file
    else:
        assert not alice.has_usable_password()


def test_users_yaml_keeps_existing_users_unless_overwrite(alice, demo_datasets):
    path = str(COLLECTIONS / "v0.5_user_collection.yaml")
    run("add_users_via_yaml", "-yf", path)
    budget = Budget.objects.get(user=alice, dataset__name="PENGUIN")
    assert float(budget.initial_epsilon) == 10  # kept
    text = run("add_users_via_yaml", "-yf", path, "-o")
    assert "update users Alice (password, budget IRIS granted, budget PENGUIN initial, budget PENGUIN spent)" in text
    budget.refresh_from_db()
    assert (float(budget.initial_epsilon), float(budget.spent_epsilon)) == (5, 0.2)  # the larger of ledger and file


def test_users_yaml_clean_deletes_absent_researchers_but_not_admins(demo_datasets, admin_user):
    run("add_user", "-u", "Zed", "-m", "z@example.com")
    data = json.loads(run("add_users_via_yaml", "-yf", str(COLLECTIONS / "v0.5_user_collection.yaml"), "-c", "--json"))
    assert {"action": "delete", "collection": "users", "name": "Zed"} in data["changes"]
    assert not User.objects.get(username="Zed").is_active
    assert User.objects.filter(username="admin", is_active=True).exists()


def test_users_yaml_clean_keeps_the_ledger_of_deleted_researchers_and_re_import_carries_it(demo_datasets, tmp_path):
    from uuid import uuid4

    from budgets.services import budget_charge

    path = str(COLLECTIONS / "v0.5_user_collection.yaml")
    run("add_users_via_yaml", "-yf", path)
    bob = User.objects.get(username="Bob")
    (budget,) = Budget.objects.filter(user=bob)
    budget_charge(user=bob, dataset=budget.dataset, epsilon=3, delta=0, job_uid=uuid4())
    rows = LedgerEntry.objects.count()
    without_bob = collection_without(path, user="Bob", directory=tmp_path)
    preview = run("add_users_via_yaml", "-yf", without_bob, "-c", "--dry-run")
    assert f"delete users Bob; ledger kept: {budget.dataset.name} ε 3" in preview
    assert "Nothing is erased from the ledger" in preview
    run("add_users_via_yaml", "-yf", without_bob, "-c")
    assert LedgerEntry.objects.count() == rows and Budget.objects.get(pk=budget.pk).is_revoked
    data = json.loads(run("add_users_via_yaml", "-yf", path, "--json"))
    assert {"action": "add", "collection": "users", "name": "Bob", "kept": [
        {"dataset": budget.dataset.name, "spent_epsilon": 3.0, "spent_delta": 0.0}
    ]} in data["changes"]  # fmt: skip
    budget.refresh_from_db()
    assert not budget.is_revoked and budget.spent_epsilon == 3  # the ledger's 3, larger than the file's


def test_users_yaml_dry_run_reports_and_writes_nothing(demo_datasets):
    audit_before = AuditEntry.objects.count()
    text = run("add_users_via_yaml", "-yf", str(COLLECTIONS / "v0.4_user_collection.yaml"), "--dry-run")
    assert "   add users Alice" in text and text.rstrip().endswith("Dry run: nothing was written.")
    assert not User.objects.filter(username="Alice").exists()
    assert AuditEntry.objects.count() == audit_before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("users: [\n  - {", "^Invalid YAML"),
        ("people: []", "^Invalid collection: the file must hold a 'users' list."),
        ("users:\n- may_query: true", r"^Invalid collection: users\[0\] needs"),
        ("users:\n- user_name: A\n- user_name: A", "^Invalid collection: user A is listed twice."),
        (
            "users:\n- user_name: A\n  datasets_list:\n  - {dataset_name: IRIS, initial_epsilon: -1, initial_delta: 0}",
            "initial_epsilon must be a non-negative number",
        ),
        (
            "users:\n- user_name: A\n  datasets_list:\n  - {dataset_name: IRIS, initial_epsilon: 1}",
            "initial_delta is required",
        ),
        (
            "users:\n- user_name: A\n  datasets_list:\n"
            "  - {dataset_name: IRIS, initial_epsilon: 1, initial_delta: 0, total_spent_epsilon: 2}",
            "spent exceeds the initial budget",
        ),
        (
            "users:\n- user_name: A\n  datasets_list:\n  - {dataset_name: MOON, initial_epsilon: 1, initial_delta: 0}",
            "^User A: dataset MOON does not exist.",
        ),
    ],
)
def test_invalid_user_collections_fail_and_write_nothing(iris, tmp_path, content, message):
    path = tmp_path / "users.yaml"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("add_users_via_yaml", "-yf", str(path))
    assert not User.objects.exists() and not AuditEntry.objects.exists()


def test_a_failure_late_in_a_collection_rolls_back_the_whole_load(iris, tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(
        "users:\n- user_name: A\n- user_name: B\n  datasets_list:\n"
        "  - {dataset_name: IRIS, initial_epsilon: 1, initial_delta: 0}\n"
        "  - {dataset_name: IRIS, initial_epsilon: 1, initial_delta: 0}\n"
    )
    with pytest.raises(CommandError, match=r"lists a dataset twice"):
        run("add_users_via_yaml", "-yf", str(path))
    assert not User.objects.exists()


def test_missing_yaml_file_is_a_command_error(db, tmp_path):
    with pytest.raises(CommandError, match=r"^Cannot read"):
        run("add_users_via_yaml", "-yf", str(tmp_path / "absent.yaml"))
