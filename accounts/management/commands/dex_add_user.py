"""dex_add_user: push a lomas user to Dex (email, username, bcrypt hash of the password)."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from accounts.dex.passwords import add_password_arguments, password_for
from accounts.dex.services import dex_user_push
from accounts.selectors import user_get_by_name
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = (
        "Create a lomas user's Dex entry. The password comes from -p or from the user's client_secret "
        "in a user collection (-yf); an existing entry is an error unless --overwrite."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="Lomas user name.")
        add_password_arguments(parser)
        parser.add_argument("-o", "--overwrite", action="store_true", help="Update the entry if Dex has one.")

    def run(
        self, *, user: str, password: str | None, yaml_file: Path | None, overwrite: bool, **options: Any
    ) -> Output:
        account = user_get_by_name(username=user)
        secret = password_for(user, password=password, yaml_file=yaml_file)
        change = dex_user_push(actor=command_actor(), user=account, password=secret, overwrite=overwrite)
        verb = "created" if change.action == "create" else "updated"
        return Output(change.to_wire(), f"Dex entry of {user} ({change.email}) {verb}.")
