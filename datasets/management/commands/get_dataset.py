"""get_dataset: a dataset's access information (DSInfo)."""

from argparse import ArgumentParser
from typing import Any

import yaml

from datasets.collections import dataset_to_wire
from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output


class Command(AdminCommand):
    help = "Show where a dataset's data is (DSInfo)."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")

    def run(self, *, dataset: str, **options: Any) -> Output:
        data = dataset_to_wire(dataset_get_by_name(name=dataset))
        return Output(data, yaml.safe_dump(data, sort_keys=False))
