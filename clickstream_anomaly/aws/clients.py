"""boto3 clients for the Lambda functions and the CLI: botocore's ``standard`` retry mode, short timeouts,
``AWS_ENDPOINT_URL`` honoured (moto, LocalStack). boto3 is imported on the first call, not at import."""

from __future__ import annotations

import os
from functools import cache
from typing import Any


@cache
def _client(service: str, endpoint: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region, config=config)


def client(service: str) -> Any:
    """A cached boto3 client (standard retries); one per service, endpoint and region."""
    return _client(service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION"))


def kinesis_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    retry_mode: str = "standard",
    max_attempts: int = 10,
    session: Any = None,
) -> Any:
    """A boto3 Kinesis client whose whole-call errors are retried by botocore (``standard``/``adaptive``)."""
    import boto3
    from botocore.config import Config

    if retry_mode not in ("standard", "adaptive", "legacy"):
        raise ValueError(f"retry mode must be standard or adaptive, got {retry_mode!r}")
    config = Config(retries={"mode": retry_mode, "max_attempts": max_attempts})
    session = session or boto3.session.Session()
    return session.client("kinesis", region_name=region, endpoint_url=endpoint_url, config=config)
