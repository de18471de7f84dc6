"""A thin client of Dex's gRPC API: the password calls, with gRPC failures turned into DexError."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self

import grpc
from django.conf import settings

from lomas.errors import InternalServerError

_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class DexError(InternalServerError):
    """Dex is not configured, or refused or failed a call."""


class DexUnavailable(DexError):
    """Dex did not answer (down, wrong address, or too slow)."""


@dataclass(frozen=True)
class DexPassword:
    """One password entry of Dex (ListPasswords never returns the hash)."""

    email: str
    username: str
    user_id: str


@dataclass(frozen=True)
class DexVersion:
    """Dex's release and API level."""

    server: str
    api: int


def _stubs() -> tuple[ModuleType, ModuleType]:
    try:
        from accounts.dex.generated import dex_api_pb2, dex_api_pb2_grpc
    except ImportError as exc:
        raise DexError("The Dex gRPC stubs are missing: run `make dex-stubs`.") from exc
    return dex_api_pb2, dex_api_pb2_grpc


def _read(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DexError(f"Cannot read {name} {path}: {exc.strerror}.") from exc


def channel_credentials() -> grpc.ChannelCredentials | None:
    """TLS credentials from the settings, or None for a plain-text channel."""
    if not settings.LOMAS_DEX_GRPC_TLS:
        return None
    ca, cert, key = settings.LOMAS_DEX_GRPC_CA_FILE, settings.LOMAS_DEX_GRPC_CERT_FILE, settings.LOMAS_DEX_GRPC_KEY_FILE
    return grpc.ssl_channel_credentials(
        root_certificates=_read("LOMAS_DEX_GRPC_CA_FILE", ca) if ca else None,
        private_key=_read("LOMAS_DEX_GRPC_KEY_FILE", key) if key else None,
        certificate_chain=_read("LOMAS_DEX_GRPC_CERT_FILE", cert) if cert else None,
    )


class DexClient:
    """One channel to Dex; use as a context manager so the channel is closed."""

    def __init__(self, *, target: str, timeout: float, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self._messages, stubs = _stubs()
        if credentials is None:
            self._channel = grpc.insecure_channel(target)
        else:
            self._channel = grpc.secure_channel(target, credentials)
        self._stub = stubs.DexStub(self._channel)

    @classmethod
    def from_settings(cls) -> "DexClient":
        """The client of the configured Dex, or DexError if none is configured."""
        if not settings.LOMAS_DEX_GRPC_TARGET:
            raise DexError("Dex is not configured: set LOMAS_DEX_GRPC_TARGET (host:port).")
        return cls(
            target=settings.LOMAS_DEX_GRPC_TARGET,
            timeout=settings.LOMAS_DEX_GRPC_TIMEOUT,
            credentials=channel_credentials(),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._channel.close()

    def _call(self, method: Callable[..., Any], name: str, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code in _UNREACHABLE:
                raise DexUnavailable(f"Dex at {self.target} is unreachable ({code.name}).") from exc
            details = exc.details() if isinstance(exc, grpc.Call) else ""
            raise DexError(f"Dex refused {name}: {details or code}.") from exc

    def create_password(self, *, email: str, bcrypt_hash: bytes, username: str, user_id: str) -> bool:
        """Create an entry; False if Dex already has one for this email."""
        password = self._messages.Password(email=email, hash=bcrypt_hash, username=username, user_id=user_id)
        response = self._call(
            self._stub.CreatePassword, "CreatePassword", self._messages.CreatePasswordReq(password=password)
        )
        return not response.already_exists

    def update_password(self, *, email: str, bcrypt_hash: bytes, username: str) -> bool:
        """Replace the hash and username of the entry with this email; False if there is none."""
        request = self._messages.UpdatePasswordReq(email=email, new_hash=bcrypt_hash, new_username=username)
        return not self._call(self._stub.UpdatePassword, "UpdatePassword", request).not_found

    def delete_password(self, *, email: str) -> bool:
        """Delete the entry with this email; False if there is none."""
        request = self._messages.DeletePasswordReq(email=email)
        return not self._call(self._stub.DeletePassword, "DeletePassword", request).not_found

    def list_passwords(self) -> list[DexPassword]:
        """Every password entry."""
        response = self._call(self._stub.ListPasswords, "ListPasswords", self._messages.ListPasswordReq())
        return [
            DexPassword(email=entry.email, username=entry.username, user_id=entry.user_id)
            for entry in response.passwords
        ]

    def get_version(self) -> DexVersion:
        """Dex's version: a cheap call to check that Dex answers."""
        response = self._call(self._stub.GetVersion, "GetVersion", self._messages.VersionReq())
        return DexVersion(server=response.server, api=response.api)
