"""load_dataset_into_postgres: copy a dataset's rows into a PostgreSQL table and register it as a SQL_DB dataset."""

from argparse import ArgumentParser
from typing import Any

from datasets.collections import dataset_source_fields
from datasets.connectors import get_connector
from datasets.connectors.postgres import table_write
from datasets.selectors import dataset_get_by_name
from datasets.services import dataset_add
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = (
        "Copy the rows of dataset -d into the PostgreSQL table --table (re-created; COPY) of the database that "
        "the LOMAS_SQL_CREDENTIALS entry -sql_cred_n names, and register it as the SQL_DB dataset --as "
        "(default: the name with _SQL), with the same metadata."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset", required=True, help="Dataset whose rows are copied.")
        parser.add_argument("--table", required=True, help="[schema.]table to (re)create.")
        parser.add_argument("-sql_cred_n", "--sql_credentials_name", required=True, help="LOMAS_SQL_CREDENTIALS entry.")
        parser.add_argument("--as", dest="new_name", default="", help="Name of the SQL_DB dataset (default NAME_SQL).")

    def run(self, *, dataset: str, table: str, sql_credentials_name: str, new_name: str, **options: Any) -> Output:
        original = dataset_get_by_name(name=dataset)
        name = new_name or f"{dataset}_SQL"
        access = {"database_type": "SQL_DB", "table": table, "credentials_name": sql_credentials_name}
        source = dataset_source_fields(name=name, access=access)
        frame = get_connector(original).get_pandas()
        rows = table_write(credentials_name=sql_credentials_name, table=table, frame=frame, metadata=original.metadata)
        dataset_add(actor=command_actor(), name=name, source=source, metadata=original.metadata)
        return Output(
            {"dataset": name, "table": table, "rows": rows},
            f"Dataset {name} added: {rows} rows of {dataset} in {table}.",
        )
