"""drop_collection: empty users (researchers), datasets or queries_archive."""

from argparse import ArgumentParser
from typing import Any

from lomas.commands import AdminCommand, Output, command_actor, kept_text
from lomas.console.collections import COLLECTIONS, collection_drop


class Command(AdminCommand):
    help = (
        "Empty a collection: users (every researcher; lomas admins stay; their ledgers are kept), datasets "
        "(refused while a dataset has budgets: its ledgers refer to it), queries_archive. Every deletion is audited."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-c", "--collection", required=True, choices=COLLECTIONS, help="Collection name.")

    def run(self, *, collection: str, **options: Any) -> Output:
        kept = collection_drop(actor=command_actor(), name=collection)
        lines = [f"Collection {collection} dropped."]
        if collection == "users":
            lines.append("Nothing is erased from the ledger: deleted users are deactivated and keep what they spent.")
            lines += [f"  {name}: {kept_text(spent)}" for name, spent in kept.items() if spent]
        return Output({"collection": collection, "dropped": True, "ledger_kept": kept}, "\n".join(lines))
