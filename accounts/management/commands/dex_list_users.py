"""dex_list_users: the password entries of Dex, and whether each is a lomas user."""

from typing import Any

from accounts.dex.selectors import dex_user_list
from accounts.selectors import user_list_names
from lomas.commands import AdminCommand, Output


class Command(AdminCommand):
    help = "List Dex's password entries (username, email, user id) and mark those that are no lomas user."

    def run(self, **options: Any) -> Output:
        lomas_names = set(user_list_names())
        entries = [
            {
                "username": entry.username,
                "email": entry.email,
                "user_id": entry.user_id,
                "lomas_user": entry.username in lomas_names,
            }
            for entry in dex_user_list()
        ]
        lines = [
            f"{entry['username']} <{entry['email']}> {entry['user_id']}"
            + ("" if entry["lomas_user"] else " (not a lomas user)")
            for entry in entries
        ]
        return Output(entries, "\n".join(lines) if lines else "Dex has no password entries.")
