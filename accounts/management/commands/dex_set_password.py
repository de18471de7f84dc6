"""dex_set_password: replace the password of a user's Dex entry."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from accounts.dex.passwords import add_password_arguments, password_for
from accounts.dex.services import dex_user_set_password
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Set the Dex password of a user (from -p or the user's client_secret in a collection -yf)."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name in Dex.")
        add_password_arguments(parser)

    def run(self, *, user: str, password: str | None, yaml_file: Path | None, **options: Any) -> Output:
        secret = password_for(user, password=password, yaml_file=yaml_file)
        change = dex_user_set_password(actor=command_actor(), username=user, password=secret)
        return Output(change.to_wire(), f"Dex password of {user} ({change.email}) set.")
