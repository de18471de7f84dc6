"""del_dataset_to_user: remove a user's access to a dataset."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from budgets.services import budget_revoke
from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = (
        "Remove a user's access to a dataset. A budget with spent amounts is only removed with --force "
        "(its ledger is then kept in the audit trail)."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")
        parser.add_argument("--force", action="store_true", help="Revoke even if budget was spent.")

    def run(self, *, user: str, dataset: str, force: bool, **options: Any) -> Output:
        budget_revoke(
            actor=command_actor(),
            user=user_get_by_name(username=user),
            dataset=dataset_get_by_name(name=dataset),
            force=force,
        )
        return Output({"user": user, "dataset": dataset, "revoked": True}, f"{user} no longer has access to {dataset}.")
