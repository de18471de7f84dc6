"""del_user: delete a user, keeping their ledgers (the user's row stays as an inactive tombstone)."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from accounts.services import user_delete
from lomas.commands import AdminCommand, Output, command_actor, kept_text


class Command(AdminCommand):
    help = (
        "Delete a user: their access ends, their budgets are revoked and their ledgers kept "
        "(created again under the same name, they carry what they spent); archived queries stay."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")

    def run(self, *, user: str, **options: Any) -> Output:
        kept = user_delete(actor=command_actor(), user=user_get_by_name(username=user)).get("ledger_kept", [])
        text = f"User {user} deleted; nothing is erased from the ledger" + (
            f" (kept: {kept_text(kept)})." if kept else "."
        )
        return Output({"user": user, "deleted": True, "ledger_kept": kept}, text)
