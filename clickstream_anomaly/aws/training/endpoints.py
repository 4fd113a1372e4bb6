"""Model, endpoint config and endpoint for a finished training job (create or update), waiting for
``InService``. Everything created carries the project tags (:mod:`clickstream_anomaly.aws.training.tags`)
so ``cleanup`` finds it.

Plain boto3 (``create_model``, ``create_endpoint_config``, ``create_endpoint``/``update_endpoint``,
``describe_endpoint``); why not the SDK: docs/decisions/0001-boto3-not-sagemaker-sdk.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clickstream_anomaly.sagemaker_config import (
    SageMakerConfigError,
    validate_instance_count,
    validate_instance_type,
    validate_resource_name,
    validate_role_arn,
)

from .errors import EndpointFailedError, SageMakerError, WaitTimeoutError
from .jobs import describe_result
from .tags import PROJECT, check_algorithm, project_tags, stamp
from .tags import endpoint_name as default_endpoint_name

DEFAULT_ENDPOINT_INSTANCE: dict[str, str] = {"rcf": "ml.c5.xlarge", "deepar": "ml.m5.large"}
VARIANT = "AllTraffic"


@dataclass(frozen=True)
class Deployment:
    """What ``deploy`` created or updated."""

    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    model_data_url: str
    image: str | None  # as the training job describes it
    action: str  # "created" or "updated"
    status: str


def latest_training_job(client: Any, algorithm: str) -> str:
    """The newest ``Completed`` training job named ``clickstream-anomaly-<algorithm>-...``."""
    prefix = f"{PROJECT}-{check_algorithm(algorithm)}-"
    resp = client.list_training_jobs(
        NameContains=prefix, StatusEquals="Completed", SortBy="CreationTime", SortOrder="Descending", MaxResults=20
    )
    names = [
        j["TrainingJobName"] for j in resp.get("TrainingJobSummaries", []) if j["TrainingJobName"].startswith(prefix)
    ]
    if not names:
        raise SageMakerConfigError(
            f"no completed {algorithm} training job found; run `sagemaker train "
            f"{algorithm}` first or pass --training-job NAME"
        )
    return names[0]


def endpoint_status(client: Any, name: str) -> dict[str, Any] | None:
    """``DescribeEndpoint`` or ``None`` when the endpoint does not exist."""
    from botocore.exceptions import ClientError

    try:
        return client.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if exc.response.get("Error", {}).get("Code") == "ValidationException" and "Could not find" in message:
            return None
        raise SageMakerError(f"cannot describe endpoint {name}: {exc}") from exc


def deploy(  # noqa: PLR0913  (the options of `sagemaker deploy`, keyword-only, each with a default)
    client: Any,
    algorithm: str,
    *,
    training_job: str | None = None,
    role_arn: str | None = None,
    endpoint_name: str | None = None,
    instance_type: str | None = None,
    instance_count: int = 1,
    poll_seconds: float = 30.0,
    timeout_s: float = 3600.0,
    on_progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Deployment:
    """Deploy the model of ``training_job`` (default: the newest completed one) behind ``endpoint_name``.

    Creates a new model and endpoint config (names ``<endpoint>-<stamp>``), then creates the endpoint or
    updates it in place when it already exists, and waits until ``InService``. The role defaults to the
    training job's. Raises :class:`EndpointFailedError` with SageMaker's FailureReason.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    check_algorithm(algorithm)
    endpoint_name = validate_resource_name(endpoint_name or default_endpoint_name(algorithm), "endpoint name")
    instance_type = validate_instance_type(instance_type or DEFAULT_ENDPOINT_INSTANCE[algorithm])
    instance_count = validate_instance_count(instance_count)
    if role_arn is not None:
        validate_role_arn(role_arn)
    suffix = stamp()
    resource_name = f"{endpoint_name[: 63 - len(suffix) - 1]}-{suffix}"
    try:
        job = training_job or latest_training_job(client, algorithm)
        result = describe_result(client.describe_training_job(TrainingJobName=job))
        if result.status != "Completed" or not result.model_artifacts:
            raise SageMakerConfigError(f"training job {job} is {result.status}; deploy needs a Completed job")
        role = role_arn or result.role_arn
        tags = project_tags(algorithm, {"clickstream-anomaly:training-job": job})
        client.create_model(
            ModelName=resource_name,
            ExecutionRoleArn=role,
            Tags=tags,
            PrimaryContainer={"Image": result.image, "ModelDataUrl": result.model_artifacts},
        )
        client.create_endpoint_config(
            EndpointConfigName=resource_name,
            Tags=tags,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": resource_name,
                    "InitialInstanceCount": instance_count,
                    "InstanceType": instance_type,
                }
            ],
        )
        existing = endpoint_status(client, endpoint_name)
        if existing is None:
            client.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=resource_name, Tags=tags)
            action = "created"
        else:
            if existing["EndpointStatus"] not in ("InService", "Failed"):
                raise SageMakerError(
                    f"endpoint {endpoint_name} is {existing['EndpointStatus']}; wait for it to "
                    "settle before deploying again"
                )
            client.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=resource_name)
            action = "updated"
    except (ClientError, BotoCoreError) as exc:
        raise SageMakerError(f"deploy {algorithm} to {endpoint_name} failed: {exc}") from exc
    if on_progress is not None:
        on_progress(
            f"{action} endpoint {endpoint_name} with config {resource_name} ({instance_count} x "
            f"{instance_type}); waiting for InService"
        )
    status = wait_for_endpoint(
        client,
        endpoint_name,
        poll_seconds=poll_seconds,
        timeout_s=timeout_s,
        on_progress=on_progress,
        sleep=sleep,
        expected_config=resource_name,
    )
    return Deployment(endpoint_name, resource_name, resource_name, result.model_artifacts, result.image, action, status)


def wait_for_endpoint(
    client: Any,
    name: str,
    *,
    poll_seconds: float = 30.0,
    timeout_s: float = 3600.0,
    on_progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    expected_config: str | None = None,
) -> str:
    """Poll until the endpoint is ``InService`` (returned); ``Failed`` or any state other than
    ``Creating``/``Updating``/``SystemUpdating`` raises :class:`EndpointFailedError`, and so does
    ``InService`` on another config than ``expected_config`` (a failed ``UpdateEndpoint`` rolls the
    endpoint back to its old config and back to ``InService``)."""
    started = time.monotonic()
    last = None
    while True:
        desc = endpoint_status(client, name)
        if desc is None:
            raise EndpointFailedError(name, "missing", "the endpoint disappeared while waiting")
        status = desc["EndpointStatus"]
        if on_progress is not None and status != last:
            on_progress(f"[{time.monotonic() - started:6.0f}s] endpoint {name}: {status}")
        last = status
        if status == "InService":
            config = desc.get("EndpointConfigName")
            if expected_config is not None and config != expected_config:
                raise EndpointFailedError(
                    name,
                    status,
                    f"still on config {config}, not {expected_config}: the update failed and SageMaker rolled "
                    f"back ({desc.get('FailureReason') or 'no reason given'})",
                )
            return status
        if status not in ("Creating", "Updating", "SystemUpdating"):
            raise EndpointFailedError(name, status, desc.get("FailureReason"))
        if time.monotonic() - started > timeout_s:
            raise WaitTimeoutError(
                f"endpoint {name} still {status} after {timeout_s:.0f} s (it keeps billing "
                "once up; run `sagemaker cleanup` if you do not need it)"
            )
        sleep(poll_seconds)


def endpoint_hyperparameters(client: Any, endpoint_name: str) -> dict[str, str]:
    """The hyperparameters of the training job behind an endpoint ``deploy`` created (found through the
    model's ``clickstream-anomaly:training-job`` tag); ``{}`` when that chain cannot be followed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        config = client.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
        model = client.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
        arn = client.describe_model(ModelName=model)["ModelArn"]
        tags = {t["Key"]: t["Value"] for t in client.list_tags(ResourceArn=arn).get("Tags", [])}
        job = tags.get("clickstream-anomaly:training-job")
        if job is None:
            return {}
        return dict(client.describe_training_job(TrainingJobName=job).get("HyperParameters") or {})
    except (ClientError, BotoCoreError, KeyError, IndexError):
        return {}
