"""get_metadata_of_dataset: a dataset's csvw-eo metadata as stored."""

import json
from argparse import ArgumentParser
from typing import Any

from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output


class Command(AdminCommand):
    help = "Show a dataset's csvw-eo metadata (JSON-LD, as stored and as accepted by add_dataset)."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")

    def run(self, *, dataset: str, **options: Any) -> Output:
        metadata = dataset_get_by_name(name=dataset).metadata
        return Output(metadata, json.dumps(metadata, indent=2))
