"""Reads on Dex: its password entries and its version."""

from accounts.dex.client import DexClient, DexPassword, DexVersion


def dex_entry_for(entries: list[DexPassword], *, username: str, email: str = "") -> DexPassword | None:
    """The entry of a lomas user: the one with their username, else the one with their email (Dex lower-cases it)."""
    for entry in entries:
        if entry.username == username:
            return entry
    if email:
        for entry in entries:
            if entry.email.lower() == email.lower():
                return entry
    return None


def dex_user_list() -> list[DexPassword]:
    """Every password entry of the configured Dex, by username."""
    with DexClient.from_settings() as client:
        return sorted(client.list_passwords(), key=lambda entry: (entry.username, entry.email))


def dex_version() -> DexVersion:
    """The configured Dex's version (DexUnavailable if it does not answer)."""
    with DexClient.from_settings() as client:
        return client.get_version()
