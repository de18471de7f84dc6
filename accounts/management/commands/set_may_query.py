"""set_may_query: set a user's query slot (True unblocks a user whose query crashed)."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from accounts.services import user_change_may_query
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Set whether a user may query (True releases a stuck query lock)."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")
        parser.add_argument("-v", "--value", required=True, choices=["True", "False"], help="New may_query value.")

    def run(self, *, user: str, value: str, **options: Any) -> Output:
        may_query = value == "True"
        user_change_may_query(actor=command_actor(), user=user_get_by_name(username=user), may_query=may_query)
        return Output({"user": user, "may_query": may_query}, f"User {user} may query: {may_query}.")
