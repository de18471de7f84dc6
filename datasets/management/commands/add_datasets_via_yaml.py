"""add_datasets_via_yaml: bulk-load a dataset collection and the metadata files it names."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from datasets.collections import dataset_records_from_collection
from datasets.services import dataset_collection_load
from lomas.collection_files import collection_read_yaml
from lomas.commands import AdminCommand, Output, changes_text, command_actor


class Command(AdminCommand):
    help = (
        "Load datasets from a YAML collection; relative metadata paths are read from the YAML file's directory. "
        "Existing datasets are kept unless -od (source) / -om (metadata); --clean also deletes the datasets "
        "absent from the file (with their budgets)."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-yf", "--yaml_file", required=True, type=Path, help="Dataset collection (YAML).")
        parser.add_argument("-c", "--clean", action="store_true", help="Delete the datasets absent from the file.")
        parser.add_argument("-od", "--overwrite_datasets", action="store_true", help="Replace existing sources.")
        parser.add_argument("-om", "--overwrite_metadata", action="store_true", help="Replace existing metadata.")
        parser.add_argument("--dry-run", action="store_true", help="Only show what would change.")

    def run(
        self,
        *,
        yaml_file: Path,
        clean: bool,
        overwrite_datasets: bool,
        overwrite_metadata: bool,
        dry_run: bool,
        **options: Any,
    ) -> Output:
        try:
            text = yaml_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {yaml_file}: {exc.strerror}.") from exc
        records = dataset_records_from_collection(
            collection_read_yaml(text, key="datasets"), base_dir=yaml_file.resolve().parent
        )
        changes = dataset_collection_load(
            actor=command_actor(),
            records=records,
            clean=clean,
            overwrite_datasets=overwrite_datasets,
            overwrite_metadata=overwrite_metadata,
            dry_run=dry_run,
        )
        return Output({"dry_run": dry_run, "changes": changes}, changes_text(changes, dry_run=dry_run))
