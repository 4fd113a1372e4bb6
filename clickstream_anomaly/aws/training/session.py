"""boto3 sessions and clients, with the region and credentials checked before any call."""

from __future__ import annotations

from typing import Any

from clickstream_anomaly.sagemaker_config import SageMakerConfigError, validate_region


def make_session(region: str | None = None, profile: str | None = None) -> Any:
    """A ``boto3.Session`` whose region and credentials are known; raises
    :class:`SageMakerConfigError` naming what is missing (no network call is made)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        session = boto3.Session(region_name=region, profile_name=profile)
    except ProfileNotFound as exc:
        raise SageMakerConfigError(str(exc)) from exc
    validate_region(session.region_name)
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise SageMakerConfigError(f"cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        raise SageMakerConfigError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE (or --profile), "
            "or run where an instance/role provides them"
        )
    return session


def clients(session: Any) -> dict[str, Any]:
    """The three clients the workflows use: ``sagemaker``, ``sagemaker-runtime``, ``s3``."""
    return {name: session.client(name) for name in ("sagemaker", "sagemaker-runtime", "s3")}
