"""set_budget_field: set a user's initial epsilon or delta on a dataset (top-ups; never below spent)."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from budgets.services import SETTABLE_BUDGET_FIELDS, budget_change_initial
from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Set the initial epsilon or delta of a user's budget on a dataset (never below what is spent)."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")
        parser.add_argument("-f", "--field", required=True, choices=SETTABLE_BUDGET_FIELDS, help="Field to set.")
        parser.add_argument("-v", "--value", required=True, type=float, help="New value.")

    def run(self, *, user: str, dataset: str, field: str, value: float, **options: Any) -> Output:
        amounts = {"epsilon": value} if field == "initial_epsilon" else {"delta": value}
        budget = budget_change_initial(
            actor=command_actor(),
            user=user_get_by_name(username=user),
            dataset=dataset_get_by_name(name=dataset),
            **amounts,
        )
        data = {
            "user": user,
            "dataset": dataset,
            "initial_epsilon": float(budget.initial_epsilon),
            "initial_delta": float(budget.initial_delta),
        }
        return Output(data, f"{user} on {dataset}: {field} set to {value:g}.")
