"""del_user: delete a user with their budgets (the audit trail keeps the budgets and ledgers)."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from accounts.services import user_delete
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Delete a user and their budgets; archived queries stay."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")

    def run(self, *, user: str, **options: Any) -> Output:
        user_delete(actor=command_actor(), user=user_get_by_name(username=user))
        return Output({"user": user, "deleted": True}, f"User {user} deleted.")
