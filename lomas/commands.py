"""The base of the lomas admin commands (spec §6.2): human-readable output, `--json` for scripts.

A command parses its arguments, calls one service or selector and prints; lomas
errors become CommandError, so the process exits non-zero with the message.
"""

import getpass
import json
from argparse import ArgumentParser
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lomas.errors import LomasError

# The audit actor name of commands.
COMMAND_ACTOR = "manage.py"


@dataclass(frozen=True)
class Output:
    """What a command prints: `data` with --json, `text` otherwise."""

    data: Any
    text: str


def command_actor() -> str:
    """The audit actor of a command: manage.py and, when known, the operating-system account running it."""
    try:
        return f"{COMMAND_ACTOR} ({getpass.getuser()})"
    except (OSError, KeyError):
        return COMMAND_ACTOR


class AdminCommand(BaseCommand):
    """A lomas admin command; `-v` is the lomas CLI's value flag where a command defines it."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # The lomas CLI's `-v/--value` replaces Django's `-v` (verbosity stays available as --verbosity).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON (for scripts).")
        self.add_command_arguments(parser)

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        """The command's own arguments."""

    def handle(self, *args: Any, as_json: bool, **options: Any) -> None:
        try:
            output = self.run(**options)
        except LomasError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(output.data, indent=2) if as_json else output.text)

    def run(self, **options: Any) -> Output:
        """Call one service or selector and say what happened."""
        raise NotImplementedError


def kept_text(kept: list[dict[str, Any]]) -> str:
    """The spent amounts a ledger keeps, per dataset: "IRIS ε 1, δ 0; PENGUIN ε 0.5, δ 1e-05"."""
    return "; ".join(f"{k['dataset']} ε {k['spent_epsilon']:g}, δ {k['spent_delta']:g}" for k in kept)


def changes_text(changes: list[dict[str, Any]], *, dry_run: bool) -> str:
    """A bulk load's changes, one per line, with the spent amounts the ledger keeps for deleted or re-added users."""
    lines = [
        f"{change['action']:>6} {change['collection']} {change['name']}"
        + (f" ({', '.join(change['fields'])})" if change.get("fields") else "")
        + (f"; ledger kept: {kept_text(change['kept'])}" if change.get("kept") else "")
        for change in changes
    ]
    if any(change["action"] == "delete" and change["collection"] == "users" for change in changes):
        lines.append("Nothing is erased from the ledger: deleted users are deactivated and keep what they spent.")
    lines.append("Dry run: nothing was written." if dry_run else f"{len(changes)} entries processed.")
    return "\n".join(lines)
