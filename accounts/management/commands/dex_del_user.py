"""dex_del_user: delete a user's Dex entry (found by username); the lomas user stays."""

from argparse import ArgumentParser
from typing import Any

from accounts.dex.services import dex_user_delete
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Delete the Dex entry with this username (the lomas user, if any, is not touched)."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name in Dex.")

    def run(self, *, user: str, **options: Any) -> Output:
        change = dex_user_delete(actor=command_actor(), username=user)
        return Output(change.to_wire(), f"Dex entry of {user} ({change.email}) deleted.")
