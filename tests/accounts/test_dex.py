"""Dex administration over gRPC: commands and the admin action against an in-process Dex gRPC server.

The server implements Dex's password calls with Dex's rules (lower-cased emails, bcrypt cost 10..16,
already_exists / not_found answers, hashes never listed) on an in-memory store.
"""

import datetime
import json
import socket
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import bcrypt
import grpc
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.dex.generated import dex_api_pb2, dex_api_pb2_grpc
from accounts.dex.services import dex_user_id
from accounts.models import AuditEntry

pytestmark = pytest.mark.django_db


@dataclass
class Entry:
    email: str
    hash: bytes
    username: str
    user_id: str


@dataclass
class FakeDex(dex_api_pb2_grpc.DexServicer):
    """Dex's password API over an in-memory store keyed by lower-cased email."""

    entries: dict[str, Entry] = field(default_factory=dict)

    @staticmethod
    def _check_cost(bcrypt_hash: bytes, context: grpc.ServicerContext) -> None:
        try:
            cost = int(bcrypt_hash.split(b"$")[2])
        except (IndexError, ValueError):
            context.abort(grpc.StatusCode.UNKNOWN, "parsing bcrypt hash: invalid")
        if not 10 <= cost <= 16:
            context.abort(grpc.StatusCode.UNKNOWN, f"given hash cost = {cost} is outside 10..16")

    def CreatePassword(self, request, context):
        password = request.password
        if not password.user_id:
            context.abort(grpc.StatusCode.UNKNOWN, "no user ID supplied")
        self._check_cost(password.hash, context)
        key = password.email.lower()
        if key in self.entries:
            return dex_api_pb2.CreatePasswordResp(already_exists=True)
        self.entries[key] = Entry(key, password.hash, password.username, password.user_id)
        return dex_api_pb2.CreatePasswordResp()

    def UpdatePassword(self, request, context):
        if request.new_hash:
            self._check_cost(request.new_hash, context)
        entry = self.entries.get(request.email.lower())
        if entry is None:
            return dex_api_pb2.UpdatePasswordResp(not_found=True)
        entry.hash = request.new_hash or entry.hash
        entry.username = request.new_username or entry.username
        return dex_api_pb2.UpdatePasswordResp()

    def DeletePassword(self, request, context):
        return dex_api_pb2.DeletePasswordResp(not_found=self.entries.pop(request.email.lower(), None) is None)

    def ListPasswords(self, request, context):
        return dex_api_pb2.ListPasswordResp(
            passwords=[
                dex_api_pb2.Password(email=e.email, username=e.username, user_id=e.user_id)
                for e in self.entries.values()
            ]
        )

    def GetVersion(self, request, context):
        return dex_api_pb2.VersionResp(server="fake", api=2)

    def by_name(self, username: str) -> Entry:
        return next(entry for entry in self.entries.values() if entry.username == username)

    def seed(self, *, email: str, username: str, password: str) -> None:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10))
        self.entries[email.lower()] = Entry(email.lower(), hashed, username, str(uuid.uuid4()))


def start_server(servicer: FakeDex, credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    dex_api_pb2_grpc.add_DexServicer_to_server(servicer, server)
    port = (
        server.add_insecure_port("127.0.0.1:0")
        if credentials is None
        else server.add_secure_port("127.0.0.1:0", credentials)
    )
    server.start()
    return server, port


@pytest.fixture
def dex(settings) -> Iterator[FakeDex]:
    servicer = FakeDex()
    server, port = start_server(servicer)
    settings.LOMAS_DEX_GRPC_TARGET = f"127.0.0.1:{port}"
    settings.LOMAS_DEX_BCRYPT_ROUNDS = 10  # Dex's lowest accepted cost keeps the tests fast
    yield servicer
    server.stop(grace=None)


@pytest.fixture
def dex_down(settings) -> str:
    """A target where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.LOMAS_DEX_GRPC_TARGET = f"127.0.0.1:{port}"
    return settings.LOMAS_DEX_GRPC_TARGET


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def collection(tmp_path: Path, users: list[dict]) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(json.dumps({"users": users}), encoding="utf-8")  # JSON is YAML
    return path


def user_entry(name: str, email: str, secret: str | None) -> dict:
    identity = {"name": name, "email": email} | ({"client_secret": secret} if secret else {})
    return {"id": identity, "may_query": True, "datasets_list": []}


def test_add_user_pushes_email_username_stable_id_and_a_bcrypt_hash(dex, alice):
    assert run("dex_add_user", "-u", "Alice", "-p", "alice-dex") == "Dex entry of Alice (alice@example.com) created.\n"
    entry = dex.entries["alice@example.com"]
    assert (entry.username, entry.user_id) == ("Alice", dex_user_id("Alice"))
    assert bcrypt.checkpw(b"alice-dex", entry.hash) and entry.hash.startswith(b"$2b$10$")
    audit = AuditEntry.objects.get(action="dex.create")
    assert (audit.target, audit.details, audit.actor_name.startswith("manage.py")) == (
        "Alice",
        {"email": "alice@example.com"},
        True,
    )
    assert "alice-dex" not in json.dumps(audit.details)


def test_add_user_twice_is_refused_unless_overwrite(dex, alice):
    run("dex_add_user", "-u", "Alice", "-p", "first")
    with pytest.raises(CommandError, match=r"^User Alice already exists in Dex \(alice@example.com\)\.$"):
        run("dex_add_user", "-u", "Alice", "-p", "second")
    assert bcrypt.checkpw(b"first", dex.by_name("Alice").hash)
    out = json.loads(run("dex_add_user", "-u", "Alice", "-p", "second", "--overwrite", "--json"))
    assert (out["action"], out["name"], out["email"]) == ("update", "Alice", "alice@example.com")
    assert bcrypt.checkpw(b"second", dex.by_name("Alice").hash) and len(dex.entries) == 1


def test_overwrite_follows_a_changed_email(dex, alice):
    dex.seed(email="old@example.com", username="Alice", password="old")
    run("dex_add_user", "-u", "Alice", "-p", "new", "-o")
    assert list(dex.entries) == ["alice@example.com"]
    assert bcrypt.checkpw(b"new", dex.entries["alice@example.com"].hash)


def test_add_user_takes_the_client_secret_of_a_collection(dex, alice, tmp_path):
    path = collection(tmp_path, [user_entry("Alice", "alice@example.com", "from-yaml")])
    run("dex_add_user", "-u", "Alice", "-yf", str(path))
    assert bcrypt.checkpw(b"from-yaml", dex.by_name("Alice").hash)


def test_add_user_refuses_unknown_users_missing_secrets_and_unusable_passwords(dex, alice, tmp_path):
    with pytest.raises(CommandError, match=r"^User Nobody does not exist"):
        run("dex_add_user", "-u", "Nobody", "-p", "x")
    path = collection(tmp_path, [user_entry("Alice", "alice@example.com", None)])
    with pytest.raises(CommandError, match=r"^User Alice has no client_secret in "):
        run("dex_add_user", "-u", "Alice", "-yf", str(path))
    with pytest.raises(CommandError, match=r"at most 72 bytes"):
        run("dex_add_user", "-u", "Alice", "-p", "x" * 73)
    with pytest.raises(CommandError, match=r"^Error: one of the arguments -p/--password -yf/--yaml_file is required"):
        run("dex_add_user", "-u", "Alice")
    assert not dex.entries and not AuditEntry.objects.exists()


def test_a_user_without_email_cannot_be_pushed(dex, db):
    from accounts.services import user_create

    user_create(username="Carol")
    with pytest.raises(CommandError, match=r"^User Carol has no email: Dex signs users in by email\.$"):
        run("dex_add_user", "-u", "Carol", "-p", "carol")


def test_dex_refusals_are_reported(dex, alice, settings):
    settings.LOMAS_DEX_BCRYPT_ROUNDS = 4
    with pytest.raises(CommandError, match=r"^Dex refused CreatePassword: given hash cost = 4 is outside 10\.\.16\.$"):
        run("dex_add_user", "-u", "Alice", "-p", "x")


@pytest.mark.parametrize(
    "args",
    [
        ("dex_add_user", "-u", "Alice", "-p", "x"),
        ("dex_del_user", "-u", "Alice"),
        ("dex_set_password", "-u", "Alice", "-p", "x"),
        ("dex_list_users",),
        ("dex_sync", "-yf", "users.yaml"),
    ],
)
def test_unreachable_dex_is_a_clear_command_error(dex_down, alice, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    collection(tmp_path, [user_entry("Alice", "alice@example.com", "x")])
    with pytest.raises(CommandError, match=rf"^Dex at {dex_down} is unreachable \(UNAVAILABLE\)\.$"):
        run(*args)
    assert not AuditEntry.objects.exists()


def test_unconfigured_dex_is_a_clear_command_error(settings, alice):
    settings.LOMAS_DEX_GRPC_TARGET = ""
    with pytest.raises(CommandError, match=r"^Dex is not configured: set LOMAS_DEX_GRPC_TARGET"):
        run("dex_list_users")


def test_set_password_and_delete_find_the_entry_by_username(dex, alice):
    dex.seed(email="a.l@example.com", username="Alice", password="old")
    assert run("dex_set_password", "-u", "Alice", "-p", "new") == "Dex password of Alice (a.l@example.com) set.\n"
    assert bcrypt.checkpw(b"new", dex.by_name("Alice").hash)
    assert run("dex_del_user", "-u", "Alice") == "Dex entry of Alice (a.l@example.com) deleted.\n"
    assert not dex.entries
    assert list(AuditEntry.objects.values_list("action", "target")) == [
        ("dex.set_password", "Alice"),
        ("dex.delete", "Alice"),
    ]
    for command in ("dex_del_user", "dex_set_password"):
        extra = () if command == "dex_del_user" else ("-p", "x")
        with pytest.raises(CommandError, match=r"^User Alice is not in Dex\.$"):
            run(command, "-u", "Alice", *extra)


def test_list_users_marks_entries_of_no_lomas_user(dex, alice):
    run("dex_add_user", "-u", "Alice", "-p", "x")
    dex.seed(email="ghost@example.com", username="Ghost", password="x")
    listed = json.loads(run("dex_list_users", "--json"))
    assert [(e["username"], e["email"], e["lomas_user"]) for e in listed] == [
        ("Alice", "alice@example.com", True),
        ("Ghost", "ghost@example.com", False),
    ]
    assert listed[0]["user_id"] == dex_user_id("Alice")
    assert "Ghost <ghost@example.com>" in run("dex_list_users") and "(not a lomas user)" in run("dex_list_users")


@pytest.fixture
def sync_setup(dex, alice, bob, tmp_path) -> Path:
    """Dex holds Alice (old password) and a stale Ghost; the collection gives Alice and Bob passwords."""
    dex.seed(email="alice@example.com", username="Alice", password="old")
    dex.seed(email="ghost@example.com", username="Ghost", password="x")
    return collection(
        tmp_path,
        [user_entry("Alice", "alice@example.com", "alice-new"), user_entry("Bob", "bob@example.com", "bob-new")],
    )


def sync(*args: str) -> list[tuple[str, str]]:
    out = json.loads(run("dex_sync", "--json", *args))
    return [(change["action"], change["name"]) for change in out["changes"]]


def test_sync_adds_missing_users_and_keeps_existing_ones(dex, sync_setup):
    assert sync("-yf", str(sync_setup)) == [("keep", "Alice"), ("create", "Bob")]
    assert bcrypt.checkpw(b"old", dex.by_name("Alice").hash)
    assert bcrypt.checkpw(b"bob-new", dex.by_name("Bob").hash)
    assert "ghost@example.com" in dex.entries
    assert list(AuditEntry.objects.values_list("action", "target")) == [("dex.create", "Bob")]


def test_sync_overwrite_updates_and_clean_deletes_entries_of_no_lomas_user(dex, sync_setup):
    changes = sync("-yf", str(sync_setup), "--overwrite", "--clean")
    assert changes == [("update", "Alice"), ("create", "Bob"), ("delete", "Ghost")]
    assert sorted(dex.entries) == ["alice@example.com", "bob@example.com"]
    assert bcrypt.checkpw(b"alice-new", dex.by_name("Alice").hash)
    assert AuditEntry.objects.filter(action__startswith="dex.").count() == 3


def test_sync_clean_frees_an_email_before_a_user_moves_to_it(dex, alice, tmp_path):
    dex.seed(email="old@example.com", username="Alice", password="old")
    dex.seed(email="alice@example.com", username="Ghost", password="x")
    path = collection(tmp_path, [user_entry("Alice", "alice@example.com", "moved")])
    assert sync("-yf", str(path), "-o", "-c") == [("update", "Alice"), ("delete", "Ghost")]
    assert list(dex.entries) == ["alice@example.com"]
    assert dex.by_name("Alice").email == "alice@example.com"
    assert bcrypt.checkpw(b"moved", dex.by_name("Alice").hash)


def test_sync_dry_run_changes_nothing(dex, sync_setup):
    text = run("dex_sync", "-yf", str(sync_setup), "-o", "-c", "--dry-run")
    assert "update dex Alice" in text and "delete dex Ghost" in text and "Dry run: nothing was written." in text
    assert sorted(dex.entries) == ["alice@example.com", "ghost@example.com"]
    assert bcrypt.checkpw(b"old", dex.by_name("Alice").hash) and not AuditEntry.objects.exists()


def test_sync_refuses_users_without_a_password_unless_skipped(dex, alice, bob, tmp_path):
    path = collection(tmp_path, [user_entry("Alice", "alice@example.com", "a")])
    with pytest.raises(CommandError, match=r"^Cannot push to Dex: Bob \(no client_secret\)\. Use --skip-missing"):
        run("dex_sync", "-yf", str(path))
    assert not dex.entries
    assert sync("-yf", str(path), "--skip-missing") == [("create", "Alice"), ("skip", "Bob")]
    assert list(dex.entries) == ["alice@example.com"]


def test_admin_action_asks_passwords_then_pushes(dex, client, admin_user, alice, bob):
    client.force_login(admin_user)
    selected = {"action": "push_to_dex", "_selected_action": [alice.pk, bob.pk]}
    page = client.post("/admin/accounts/user/", selected)
    assert page.status_code == 200
    assert "Password of Alice" in page.content.decode() and "Password of Bob" in page.content.decode()
    assert not dex.entries
    response = client.post(
        "/admin/accounts/user/",
        {**selected, "apply": "1", f"password_{alice.pk}": "a-pass", f"password_{bob.pk}": "b-pass"},
        follow=True,
    )
    assert "Pushed to Dex: Alice (created), Bob (created)." in response.content.decode()
    assert bcrypt.checkpw(b"a-pass", dex.by_name("Alice").hash)
    assert bcrypt.checkpw(b"b-pass", dex.by_name("Bob").hash)
    assert set(AuditEntry.objects.filter(action="dex.create").values_list("actor", "target")) == {
        (admin_user.pk, "Alice"),
        (admin_user.pk, "Bob"),
    }
    again = client.post(
        "/admin/accounts/user/",
        {**selected, "apply": "1", f"password_{alice.pk}": "x", f"password_{bob.pk}": "y"},
        follow=True,
    )
    assert "Alice: User Alice already exists in Dex" in again.content.decode()
    assert bcrypt.checkpw(b"a-pass", dex.by_name("Alice").hash)


def test_admin_action_requires_every_password_and_reports_dex_down(dex_down, client, admin_user, alice):
    client.force_login(admin_user)
    selected = {"action": "push_to_dex", "_selected_action": [alice.pk], "apply": "1"}
    page = client.post("/admin/accounts/user/", selected)
    assert page.status_code == 200 and "This field is required." in page.content.decode()
    response = client.post("/admin/accounts/user/", {**selected, f"password_{alice.pk}": "p"}, follow=True)
    assert f"Dex at {dex_down} is unreachable (UNAVAILABLE)." in response.content.decode()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "dex.pem", tmp_path / "dex.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_mutual_tls_channel_from_settings(settings, alice, tmp_path):
    cert, key = self_signed(tmp_path)
    servicer = FakeDex()
    credentials = grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())], root_certificates=cert.read_bytes(), require_client_auth=True
    )
    server, port = start_server(servicer, credentials)
    try:
        settings.LOMAS_DEX_GRPC_TARGET = f"localhost:{port}"
        settings.LOMAS_DEX_BCRYPT_ROUNDS = 10
        settings.LOMAS_DEX_GRPC_TLS = True
        settings.LOMAS_DEX_GRPC_CA_FILE = str(cert)
        settings.LOMAS_DEX_GRPC_CERT_FILE = str(cert)
        settings.LOMAS_DEX_GRPC_KEY_FILE = str(key)
        run("dex_add_user", "-u", "Alice", "-p", "tls")
        assert bcrypt.checkpw(b"tls", servicer.by_name("Alice").hash)
        settings.LOMAS_DEX_GRPC_CERT_FILE = settings.LOMAS_DEX_GRPC_KEY_FILE = ""
        with pytest.raises(CommandError, match=r"^Dex at localhost:\d+ is unreachable"):
            run("dex_list_users")
    finally:
        server.stop(grace=None)
