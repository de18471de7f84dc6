"""get_user: a user, their flags and budgets."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from budgets.collections import user_to_wire
from lomas.commands import AdminCommand, Output


def budget_lines(datasets_list: list[dict[str, Any]]) -> list[str]:
    """One line per budget of a lomas User."""
    return [
        f"  {entry['dataset_name']}: initial ε {entry['initial_epsilon']:g}, δ {entry['initial_delta']:g}; "
        f"spent ε {entry['total_spent_epsilon']:g}, δ {entry['total_spent_delta']:g}"
        for entry in datasets_list
    ]


class Command(AdminCommand):
    help = "Show a user: email, may_query, admin flag and budgets."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")

    def run(self, *, user: str, **options: Any) -> Output:
        data = user_to_wire(user_get_by_name(username=user))
        head = f"{data['id']['name']} <{data['id']['email']}> may_query: {data['may_query']}, admin: {data['admin']}"
        return Output(data, "\n".join([head, *budget_lines(data["datasets_list"])]))
