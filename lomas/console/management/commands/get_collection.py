"""get_collection: print a collection (YAML by default, JSON with --json), or export it as collection files."""

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import yaml

from lomas.commands import AdminCommand, Output
from lomas.console.collections import COLLECTIONS, collection_export, collection_get


class Command(AdminCommand):
    help = (
        "Print a collection: users (lomas 0.5 layout, no secrets), datasets, metadata or queries_archive. "
        "With --export-dir, users or datasets are written as a re-importable collection file "
        "(datasets with one csvw-eo metadata JSON file each)."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-c", "--collection", required=True, choices=COLLECTIONS, help="Collection name.")
        parser.add_argument("--export-dir", type=Path, default=None, help="Write the collection files here.")

    def run(self, *, collection: str, export_dir: Path | None, **options: Any) -> Output:
        if export_dir is None:
            data = collection_get(name=collection)
            return Output(data, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        document, files = collection_export(name=collection)
        for relative, content in files.items():
            (export_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (export_dir / relative).write_text(json.dumps(content, indent=2), encoding="utf-8")
        target = export_dir / f"{collection}_collection.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return Output({"collection": collection, "file": str(target)}, f"Collection {collection} written to {target}.")
