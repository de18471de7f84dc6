"""drop_collection: empty users (researchers), datasets or queries_archive."""

from argparse import ArgumentParser
from typing import Any

from lomas.commands import AdminCommand, Output, command_actor
from lomas.console.collections import COLLECTIONS, collection_drop


class Command(AdminCommand):
    help = (
        "Empty a collection: users (every researcher; lomas admins stay), datasets (with their budgets), "
        "queries_archive. Every deletion is audited."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-c", "--collection", required=True, choices=COLLECTIONS, help="Collection name.")

    def run(self, *, collection: str, **options: Any) -> Output:
        collection_drop(actor=command_actor(), name=collection)
        return Output({"collection": collection, "dropped": True}, f"Collection {collection} dropped.")
