"""synthesize_dataset: a large dataset of dummy rows generated from another dataset's metadata (benchmarks)."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from django.conf import settings

from datasets.dummy import metadata_for_rows, write_dummy_parquet
from datasets.models import Dataset
from datasets.selectors import dataset_get_by_name, dataset_require_new_name
from datasets.services import dataset_add
from lomas.commands import AdminCommand, Output, command_actor
from lomas.errors import InvalidQuery


class Command(AdminCommand):
    help = (
        "Generate --rows dummy rows (seeded) from the metadata of dataset -d into LOMAS_DATA_DIR/<name>.parquet "
        "and register them as the PATH_DB dataset --as, with that metadata scaled to the row count. A file of "
        "the same rows already there is kept (the command is idempotent)."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset", required=True, help="Dataset whose metadata describes the rows.")
        parser.add_argument("--rows", type=int, required=True, help="Number of rows to generate.")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the first chunk of rows (default 0).")
        parser.add_argument("--as", dest="new_name", required=True, help="Name of the new dataset.")

    def run(self, *, dataset: str, rows: int, seed: int, new_name: str, **options: Any) -> Output:
        original = dataset_get_by_name(name=dataset)
        dataset_require_new_name(name=new_name)  # before minutes of generating rows
        if rows < 1:
            raise InvalidQuery("--rows must be at least 1.")
        metadata = metadata_for_rows(original.metadata, nb_rows=rows)
        file_name = f"{new_name.lower()}-{rows}-{seed}.parquet"
        path = Path(settings.LOMAS_DATA_DIR) / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = not path.exists() or pq.ParquetFile(path).metadata.num_rows != rows
        if generated:
            write_dummy_parquet(original.metadata, path, nb_rows=rows, seed=seed)
        source = {"access": Dataset.Access.PATH, "path": file_name}
        dataset_add(actor=command_actor(), name=new_name, source=source, metadata=metadata)
        verb = "generated" if generated else "kept"
        return Output(
            {"dataset": new_name, "path": file_name, "rows": rows, "generated": generated},
            f"Dataset {new_name} added: {rows} rows from the metadata of {dataset} ({file_name} {verb}).",
        )
