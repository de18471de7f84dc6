"""add_dataset: register one dataset (local path, http(s) URL, S3 object or PostgreSQL table) with its metadata."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from datasets.collections import dataset_source_fields, metadata_read
from datasets.services import dataset_add
from lomas.commands import AdminCommand, Output, command_actor


class Command(AdminCommand):
    help = (
        "Add a dataset. PATH_DB: -d_path is a path under LOMAS_DATA_DIR, an absolute path or an http(s) URL "
        "(CSV or parquet). S3_DB: -s3b, -s3k, -s3_url and -cred_n (an entry of LOMAS_S3_CREDENTIALS; keys are "
        "never stored). SQL_DB: -sql_table [SCHEMA.]TABLE and -sql_cred_n (an entry of LOMAS_SQL_CREDENTIALS, a "
        "postgresql:// URL; never stored). Metadata: -m_db PATH_DB -mp <csvw-eo JSON file>, or -m_db S3_DB -m_s3b "
        "-m_s3k [-m_s3_url] with -m_s3_ak/-m_s3_sak or -m_cred_n (read once now; only the metadata is stored)."
    )

    def add_command_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-d", "--dataset_name", required=True, help="Dataset name.")
        parser.add_argument("-db", "--database_type", required=True, choices=["PATH_DB", "S3_DB", "SQL_DB"])
        parser.add_argument("-d_path", "--dataset_path", default="", help="PATH_DB: file path or http(s) URL.")
        parser.add_argument("-s3b", "--bucket", default="", help="S3_DB: bucket.")
        parser.add_argument("-s3k", "--key", default="", help="S3_DB: object key.")
        parser.add_argument("-s3_url", "--endpoint_url", default="", help="S3_DB: endpoint URL.")
        parser.add_argument("-cred_n", "--credentials_name", default="", help="S3_DB: LOMAS_S3_CREDENTIALS entry.")
        parser.add_argument("-sql_table", "--sql_table", default="", help="SQL_DB: [schema.]table.")
        parser.add_argument(
            "-sql_cred_n", "--sql_credentials_name", default="", help="SQL_DB: LOMAS_SQL_CREDENTIALS entry."
        )
        parser.add_argument("-m_db", "--metadata_database_type", required=True, choices=["PATH_DB", "S3_DB"])
        parser.add_argument("-mp", "--metadata_path", default="", help="PATH_DB: csvw-eo metadata JSON file.")
        parser.add_argument("-m_s3b", "--metadata_bucket", default="", help="S3_DB metadata: bucket.")
        parser.add_argument("-m_s3k", "--metadata_key", default="", help="S3_DB metadata: object key.")
        parser.add_argument("-m_s3_url", "--metadata_endpoint_url", default="", help="S3_DB metadata: endpoint URL.")
        parser.add_argument("-m_s3_ak", "--metadata_access_key_id", default="", help="S3_DB metadata: access key.")
        parser.add_argument(
            "-m_s3_sak", "--metadata_secret_access_key", default="", help="S3_DB metadata: secret access key."
        )
        parser.add_argument(
            "-m_cred_n", "--metadata_credentials_name", default="", help="S3_DB metadata: LOMAS_S3_CREDENTIALS entry."
        )

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
        sql_table: str,
        sql_credentials_name: str,
        metadata_database_type: str,
        metadata_path: str,
        metadata_bucket: str,
        metadata_key: str,
        metadata_endpoint_url: str,
        metadata_access_key_id: str,
        metadata_secret_access_key: str,
        metadata_credentials_name: str,
        **options: Any,
    ) -> Output:
        if database_type == "SQL_DB":
            access = {"database_type": database_type, "table": sql_table, "credentials_name": sql_credentials_name}
        else:
            access = {
                "database_type": database_type,
                "path": dataset_path,
                "bucket": bucket,
                "key": key,
                "endpoint_url": endpoint_url,
                "credentials_name": credentials_name,
            }
        metadata_access = {
            "database_type": metadata_database_type,
            "path": metadata_path,
            "bucket": metadata_bucket,
            "key": metadata_key,
            "endpoint_url": metadata_endpoint_url,
            "access_key_id": metadata_access_key_id,
            "secret_access_key": metadata_secret_access_key,
            "credentials_name": metadata_credentials_name,
        }
        dataset = dataset_add(
            actor=command_actor(),
            name=dataset_name,
            source=dataset_source_fields(name=dataset_name, access=access),
            metadata=metadata_read(name=dataset_name, access=metadata_access, base_dir=Path()),
        )
        where = dataset.path or dataset.sql_table or f"s3://{dataset.s3_bucket}/{dataset.s3_key}"
        return Output({"dataset": dataset_name, "added": True}, f"Dataset {dataset_name} added ({where}).")
