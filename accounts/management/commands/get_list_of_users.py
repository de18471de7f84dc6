"""get_list_of_users: the names of every lomas user."""

from typing import Any

from accounts.selectors import user_list_names
from lomas.commands import AdminCommand, Output


class Command(AdminCommand):
    help = "List the names of all users."

    def run(self, **options: Any) -> Output:
        names = user_list_names()
        return Output(names, "\n".join(names))
