"""dex_sync: push every lomas user to Dex, passwords from a user collection's client_secret."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from accounts.dex.passwords import passwords_from_collection
from accounts.dex.services import dex_sync
from lomas.commands import AdminCommand, Output, changes_text, command_actor


class Command(AdminCommand):
    help = (
        "Push all lomas users to Dex, each with the client_secret the collection gives them. Existing entries "
        "are kept unless --overwrite; --clean deletes the entries of no lomas user. A user without a "
        "client_secret or an email is an error (nothing changes) unless --skip-missing."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-yf", "--yaml_file", required=True, type=Path, help="User collection (YAML) holding the passwords."
        )
        parser.add_argument("-c", "--clean", action="store_true", help="Delete the Dex entries of no lomas user.")
        parser.add_argument("-o", "--overwrite", action="store_true", help="Update the entries Dex already has.")
        parser.add_argument(
            "--skip-missing", action="store_true", help="Leave out the users without client_secret or email."
        )
        parser.add_argument("--dry-run", action="store_true", help="Only show what would change.")

    def run(
        self, *, yaml_file: Path, clean: bool, overwrite: bool, skip_missing: bool, dry_run: bool, **options: Any
    ) -> Output:
        changes = dex_sync(
            actor=command_actor(),
            passwords=passwords_from_collection(yaml_file),
            clean=clean,
            overwrite=overwrite,
            skip_missing=skip_missing,
            dry_run=dry_run,
        )
        wire = [change.to_wire() for change in changes]
        return Output({"dry_run": dry_run, "changes": wire}, changes_text(wire, dry_run=dry_run))
