"""Datasets stored as a CSV or parquet object in S3 (or an S3-compatible store such as MinIO).

The keys are never stored with the dataset: its `credentials_name` names an entry of
settings.LOMAS_S3_CREDENTIALS, `{"access_key_id": ..., "secret_access_key": ...,
"region_name": ...?}`, read from the environment or a secrets file.
"""

from collections.abc import Hashable, Sequence
from functools import lru_cache
from typing import Any

import boto3
import pandas as pd
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from datasets.connectors.base import DataConnector, DatasetUnavailable, only_columns
from datasets.connectors.reading import file_format, read_typed

DEFAULT_REGION = "us-east-1"
_CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})


def s3_credentials(name: str) -> dict[str, str]:
    """The LOMAS_S3_CREDENTIALS entry `name`; DatasetUnavailable (a 500, spec §4.2) if there is none."""
    entry = settings.LOMAS_S3_CREDENTIALS.get(name) if name else None
    if not entry:
        raise DatasetUnavailable(f"Could not find credentials for private dataset (credentials_name {name!r}).")
    return entry


def s3_get_bytes(
    *, endpoint_url: str, bucket: str, key: str, access_key_id: str, secret_access_key: str, region_name: str = ""
) -> bytes:
    """The whole object; DatasetUnavailable naming the object and the S3 error code otherwise."""
    client = _client(endpoint_url, access_key_id, secret_access_key, region_name)
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        raise _unavailable(bucket, key, exc) from exc


class S3Connector(DataConnector):
    """Reads a CSV or parquet object, typed and ordered by the metadata's columns (see reading.read_typed).

    The fingerprint is the object's ETag, LastModified and ContentLength (one HEAD request).
    """

    def __init__(
        self, *, endpoint_url: str, bucket: str, key: str, credentials_name: str, metadata: dict[str, Any]
    ) -> None:
        self.endpoint_url, self.bucket, self.key = endpoint_url, bucket, key
        self.metadata = metadata
        self.source = f"s3://{bucket}/{key}" + (f" at {endpoint_url}" if endpoint_url else "")
        file_format(key)
        self._credentials = s3_credentials(credentials_name)

    def get_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Download and read the whole object (once per call: the machine's columnar copy is get_connector's job)."""
        data = s3_get_bytes(
            endpoint_url=self.endpoint_url,
            bucket=self.bucket,
            key=self.key,
            access_key_id=self._credentials["access_key_id"],
            secret_access_key=self._credentials["secret_access_key"],
            region_name=self._credentials.get("region_name", ""),
        )
        return only_columns(read_typed(data, name=self.key, metadata=self.metadata, label=self.source), columns)

    def fingerprint(self) -> Hashable:
        """The object's (ETag, LastModified, ContentLength)."""
        client = _client(
            self.endpoint_url,
            self._credentials["access_key_id"],
            self._credentials["secret_access_key"],
            self._credentials.get("region_name", ""),
        )
        try:
            head = client.head_object(Bucket=self.bucket, Key=self.key)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(self.bucket, self.key, exc) from exc
        return head.get("ETag"), head.get("LastModified"), head.get("ContentLength")


@lru_cache(maxsize=32)
def _client(endpoint_url: str, access_key_id: str, secret_access_key: str, region_name: str) -> Any:
    """One thread-safe client per endpoint and key pair, kept for the life of the process."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region_name or DEFAULT_REGION,
        config=_CLIENT_CONFIG,
    )


def _unavailable(bucket: str, key: str, exc: BotoCoreError | ClientError) -> DatasetUnavailable:
    reason = exc.response.get("Error", {}).get("Code", "error") if isinstance(exc, ClientError) else type(exc).__name__
    return DatasetUnavailable(f"Cannot read S3 object s3://{bucket}/{key} ({reason}).")
