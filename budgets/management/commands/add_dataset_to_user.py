"""add_dataset_to_user: give a user a budget on a dataset (nothing spent)."""

from argparse import ArgumentParser
from typing import Any

from accounts.selectors import user_get_by_name
from budgets.services import budget_add_access
from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Give a user access to a dataset with an initial budget."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name.")
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")
        parser.add_argument("-e", "--epsilon", required=True, type=float, help="Initial epsilon.")
        parser.add_argument("-del", "--delta", required=True, type=float, help="Initial delta.")

    def run(self, *, user: str, dataset: str, epsilon: float, delta: float, **options: Any) -> Output:
        budget_add_access(
            actor=command_actor(),
            user=user_get_by_name(username=user),
            dataset=dataset_get_by_name(name=dataset),
            epsilon=epsilon,
            delta=delta,
        )
        data = {"user": user, "dataset": dataset, "initial_epsilon": epsilon, "initial_delta": delta}
        return Output(data, f"{user} may query {dataset} with ε {epsilon:g}, δ {delta:g}.")
