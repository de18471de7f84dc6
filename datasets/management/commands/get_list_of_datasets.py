"""get_list_of_datasets: the names of every dataset."""

from typing import Any

from datasets.selectors import dataset_list_names
from lomas.commands import AdminCommand, Output


class Command(AdminCommand):
    help = "List the names of all datasets."

    def run(self, **options: Any) -> Output:
        names = dataset_list_names()
        return Output(names, "\n".join(names))
