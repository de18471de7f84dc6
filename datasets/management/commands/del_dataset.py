"""del_dataset: delete a dataset, its metadata and the budgets on it (kept in the audit trail)."""

from argparse import ArgumentParser
from typing import Any

from datasets.selectors import dataset_get_by_name
from datasets.services import dataset_delete
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Delete a dataset with its metadata and the budgets on it; archived queries stay."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")

    def run(self, *, dataset: str, **options: Any) -> Output:
        dataset_delete(actor=command_actor(), dataset=dataset_get_by_name(name=dataset))
        return Output({"dataset": dataset, "deleted": True}, f"Dataset {dataset} deleted.")
