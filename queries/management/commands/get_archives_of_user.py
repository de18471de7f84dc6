"""get_archives_of_user: every archived query of a user, on all datasets."""

import json
from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from lomas.commands import AdminCommand, Output
from queries.selectors import archive_list_by_user_name


class Command(AdminCommand):
    help = "Show a user's archived queries (all datasets), oldest first."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")

    def run(self, *, user: str, **options: Any) -> Output:
        archives = archive_list_by_user_name(user_name=user_get_by_name(username=user).username)
        lines = [
            f"{record['timestamp']:.0f} {record['dp_library']} on {record['dataset_name']}: "
            f"{json.dumps(record['client_input'])}"
            for record in archives
        ]
        return Output(archives, "\n".join(lines) or f"No archived queries for {user}.")
