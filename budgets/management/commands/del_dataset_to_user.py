"""del_dataset_to_user: remove a user's access to a dataset (the budget is revoked, its ledger kept)."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from budgets.services import budget_revoke
from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = (
        "Remove a user's access to a dataset. The budget is revoked, not deleted: its ledger stays, "
        "and access granted again carries what it spent."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")

    def run(self, *, user: str, dataset: str, **options: Any) -> Output:
        budget = budget_revoke(
            actor=command_actor(), user=user_get_by_name(username=user), dataset=dataset_get_by_name(name=dataset)
        )
        spent = {"spent_epsilon": float(budget.spent_epsilon), "spent_delta": float(budget.spent_delta)}
        text = (
            f"{user} no longer has access to {dataset}; the ledger keeps what was spent "
            f"(ε {spent['spent_epsilon']:g}, δ {spent['spent_delta']:g})."
        )
        return Output({"user": user, "dataset": dataset, "revoked": True, **spent}, text)
