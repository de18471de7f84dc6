"""get_list_of_datasets_from_user: the datasets a user has a budget on."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from datasets.selectors import dataset_list_names_for_user
from lomas.commands import AdminCommand, Output


class Command(AdminCommand):
    help = "List the datasets a user may query."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")

    def run(self, *, user: str, **options: Any) -> Output:
        names = dataset_list_names_for_user(user=user_get_by_name(username=user))
        return Output(names, "\n".join(names))
