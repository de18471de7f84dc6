"""moto's standalone S3 server on localhost, with IAM authentication switched on."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

CREDENTIALS_NAME = "lomas-s3"


@dataclass(frozen=True)
class S3Server:
    """A running moto server and the keys of an IAM user allowed every S3 action on it."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    def client(self, *, secret_access_key: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            region_name="us-east-1",
        )

    def credentials(self) -> dict[str, str]:
        """A LOMAS_S3_CREDENTIALS entry for these keys."""
        return {"access_key_id": self.access_key_id, "secret_access_key": self.secret_access_key}


def _set_auth(endpoint_url: str, free_requests: str) -> None:
    """Requests answered before moto checks signatures and IAM policies ("inf": never checked)."""
    requests.post(f"{endpoint_url}/moto-api/reset-auth", data=free_requests.encode(), timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint_url,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
        region_name="us-east-1",
    )
    iam.create_user(UserName="lomas")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="lomas", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="lomas")["AccessKey"]
    _set_auth(endpoint_url, "0")
    try:
        yield S3Server(endpoint_url, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        _set_auth(endpoint_url, "inf")
        server.stop()


@pytest.fixture
def s3_bucket(moto_s3: S3Server, settings: Any) -> str:
    """A new bucket, with the server's keys configured as LOMAS_S3_CREDENTIALS entry CREDENTIALS_NAME."""
    name = f"lomas-{uuid4().hex[:12]}"
    moto_s3.client().create_bucket(Bucket=name)
    settings.LOMAS_S3_CREDENTIALS = {CREDENTIALS_NAME: moto_s3.credentials()}
    return name
