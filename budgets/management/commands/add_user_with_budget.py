"""add_user_with_budget: a new researcher with a budget on one dataset."""

from argparse import ArgumentParser
from typing import Any

from budgets.services import user_add_with_budget
from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = "Add a user with an initial budget on one dataset."

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--user", required=True, help="User name (case-sensitive).")
        parser.add_argument("-m", "--email", required=True, help="Email address.")
        parser.add_argument("-s", "--client_secret", default=None, help="Password (optional).")
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")
        parser.add_argument("-e", "--epsilon", required=True, type=float, help="Initial epsilon.")
        parser.add_argument("-del", "--delta", required=True, type=float, help="Initial delta.")

    def run(
        self, *, user: str, email: str, client_secret: str | None, dataset: str, epsilon: float, delta: float, **_: Any
    ) -> Output:
        user_add_with_budget(
            actor=command_actor(),
            username=user,
            email=email,
            password=client_secret,
            dataset=dataset_get_by_name(name=dataset),
            epsilon=epsilon,
            delta=delta,
        )
        data = {"user": user, "dataset": dataset, "initial_epsilon": epsilon, "initial_delta": delta}
        return Output(data, f"User {user} added with a budget of ε {epsilon:g}, δ {delta:g} on {dataset}.")
