"""set_dataset_budget: cap the total (ε, δ) all researchers together may spend on a dataset."""

from argparse import ArgumentParser
from typing import Any

from budgets.selectors import dataset_budget_to_wire
from budgets.services import dataset_budget_set
from datasets.selectors import dataset_get_by_name
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = (
        "Cap the total epsilon and delta all researchers together may spend on a dataset "
        "(never below what they spent in total)."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset", required=True, help="Dataset name.")
        parser.add_argument("-e", "--epsilon", required=True, type=float, help="Total epsilon.")
        parser.add_argument("-del", "--delta", required=True, type=float, help="Total delta.")

    def run(self, *, dataset: str, epsilon: float, delta: float, **options: Any) -> Output:
        found = dataset_get_by_name(name=dataset)
        dataset_budget_set(actor=command_actor(), dataset=found, epsilon=epsilon, delta=delta)
        data = dataset_budget_to_wire(dataset=found)
        text = (
            f"Dataset {dataset}: total budget ε {data['epsilon']:g}, δ {data['delta']:g}; "
            f"spent ε {data['total_spent_epsilon']:g}, δ {data['total_spent_delta']:g}; "
            f"remaining ε {data['remaining_epsilon']:g}, δ {data['remaining_delta']:g}."
        )
        return Output(data, text)
