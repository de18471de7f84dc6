"""add_users_via_yaml: bulk-load a user collection (lomas 0.4 `user_name` or 0.5 `id` layout)."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from budgets.collections import user_budget_records_from_collection
from budgets.services import user_collection_load
from lomas.collection_files import collection_read_yaml
from lomas.commands import AdminCommand, Output, changes_text, command_actor


class Command(AdminCommand):
    help = (
        "Load users and their budgets from a YAML collection. Existing users are kept unless --overwrite; "
        "--clean also deletes the researchers absent from the file. Spent amounts already in the ledger never change."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-yf", "--yaml_file", required=True, type=Path, help="User collection (YAML).")
        parser.add_argument("-c", "--clean", action="store_true", help="Delete the researchers absent from the file.")
        parser.add_argument("-o", "--overwrite", action="store_true", help="Update the users that already exist.")
        parser.add_argument("--dry-run", action="store_true", help="Only show what would change.")

    def run(self, *, yaml_file: Path, clean: bool, overwrite: bool, dry_run: bool, **options: Any) -> Output:
        try:
            text = yaml_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {yaml_file}: {exc.strerror}.") from exc
        records = user_budget_records_from_collection(collection_read_yaml(text, key="users"))
        changes = user_collection_load(
            actor=command_actor(), records=records, clean=clean, overwrite=overwrite, dry_run=dry_run
        )
        return Output({"dry_run": dry_run, "changes": changes}, changes_text(changes, dry_run=dry_run))
