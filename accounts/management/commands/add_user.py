"""add_user: a new researcher who may query and has no datasets yet."""

from argparse import ArgumentParser
from typing import Any

from accounts.services import user_add
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Add a user (may query, no datasets). The client secret, if given, is the sign-in password."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name (case-sensitive).")
        parser.add_argument("-m", "--email", required=True, help="Email address.")
        parser.add_argument("-s", "--client_secret", default=None, help="Password (optional).")

    def run(self, *, user: str, email: str, client_secret: str | None, **options: Any) -> Output:
        user_add(actor=command_actor(), username=user, email=email, password=client_secret)
        return Output({"user": user, "added": True}, f"User {user} added.")
