"""add_dataset: register one dataset (local path, http(s) URL or S3 object) with its csvw-eo metadata file."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from datasets.collections import dataset_source_fields, metadata_read_file
from datasets.services import dataset_add
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = (
        "Add a dataset. PATH_DB: -d_path is a path under LOMAS_DATA_DIR, an absolute path or an http(s) URL. "
        "S3_DB: -s3b, -s3k, -s3_url and -cred_n (an entry of LOMAS_S3_CREDENTIALS; keys are never stored). "
        "Metadata: -m_db PATH_DB -mp <csvw-eo JSON file>."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset_name", required=True, help="Dataset name.")
        parser.add_argument("-db", "--database_type", required=True, choices=["PATH_DB", "S3_DB"])
        parser.add_argument("-d_path", "--dataset_path", default="", help="PATH_DB: file path or http(s) URL.")
        parser.add_argument("-s3b", "--bucket", default="", help="S3_DB: bucket.")
        parser.add_argument("-s3k", "--key", default="", help="S3_DB: object key.")
        parser.add_argument("-s3_url", "--endpoint_url", default="", help="S3_DB: endpoint URL.")
        parser.add_argument("-cred_n", "--credentials_name", default="", help="S3_DB: LOMAS_S3_CREDENTIALS entry.")
        parser.add_argument("-m_db", "--metadata_database_type", required=True, choices=["PATH_DB"])
        parser.add_argument("-mp", "--metadata_path", required=True, type=Path, help="csvw-eo metadata JSON file.")

    def run(
        self,
        *,
        dataset_name: str,
        database_type: str,
        dataset_path: str,
        bucket: str,
        key: str,
        endpoint_url: str,
        credentials_name: str,
        metadata_path: Path,
        **options: Any,
    ) -> Output:
        access = {
            "database_type": database_type,
            "path": dataset_path,
            "bucket": bucket,
            "key": key,
            "endpoint_url": endpoint_url,
            "credentials_name": credentials_name,
        }
        dataset = dataset_add(
            actor=command_actor(),
            name=dataset_name,
            source=dataset_source_fields(name=dataset_name, access=access),
            metadata=metadata_read_file(name=dataset_name, path=metadata_path),
        )
        where = dataset.path or f"s3://{dataset.s3_bucket}/{dataset.s3_key}"
        return Output({"dataset": dataset_name, "added": True}, f"Dataset {dataset_name} added ({where}).")
