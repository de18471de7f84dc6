"""get_user: a user, their flags and budgets."""

from argparse import ArgumentParser
from typing import Any

from accounts.collections import user_to_wire
from accounts.selectors import user_get_by_name
from lomas.commands import AdminCommand, Output, budget_lines


class Command(AdminCommand):
    help = "Show a user: email, may_query, admin flag and budgets."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")

    def run(self, *, user: str, **options: Any) -> Output:
        data = user_to_wire(user_get_by_name(username=user))
        head = f"{data['id']['name']} <{data['id']['email']}> may_query: {data['may_query']}, admin: {data['admin']}"
        return Output(data, "\n".join([head, *budget_lines(data["datasets_list"])]))
