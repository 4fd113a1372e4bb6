"""SageMaker training jobs for the built-in RCF and DeepAR algorithms, through plain boto3.

Plain boto3 rather than the SageMaker SDK: see docs/decisions/0001-boto3-not-sagemaker-sdk.md.

Each algorithm's ``CreateTrainingJob`` request renders the one :class:`~.spec.TrainingJobSpec`:
:func:`rcf_training_request`, :func:`deepar_training_request`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clickstream_anomaly.sagemaker_config import (
    deepar_hyperparameters,
    rcf_hyperparameters,
    validate_bucket,
    validate_instance_count,
    validate_instance_type,
    validate_prefix,
    validate_resource_name,
    validate_role_arn,
)

from .errors import JobFailedError, SageMakerError, WaitTimeoutError
from .images import image_uri
from .spec import (
    DEFAULT_TRAINING_INSTANCE,
    MAX_RUNTIME_SECONDS,
    VOLUME_GB,
    Algorithm,
    TrainingJobSpec,
    root_prefix,
)
from .tags import job_name as default_job_name
from .tags import project_tags

TERMINAL_JOB_STATES = ("Completed", "Failed", "Stopped")


@dataclass(frozen=True)
class TrainingSettings:
    """Where and how to train. ``prefix`` is the S3 key prefix used by ``prepare`` (the spec's root); models
    go to ``s3://bucket/prefix/models/``. Times in seconds, volume in GB."""

    role_arn: str
    bucket: str
    region: str
    prefix: str = "clickstream-anomaly"
    instance_type: str | None = None
    instance_count: int = 1
    volume_gb: int = VOLUME_GB
    max_runtime_s: int = MAX_RUNTIME_SECONDS
    job_name: str | None = None

    def validated(self, algorithm: str) -> TrainingSettings:
        """A copy with every field checked (raises ``SageMakerConfigError``) and defaults filled in."""
        validate_role_arn(self.role_arn)
        validate_bucket(self.bucket)
        validate_instance_type(self.instance_type or DEFAULT_TRAINING_INSTANCE[algorithm])
        validate_instance_count(self.instance_count)
        if self.job_name is not None:
            validate_resource_name(self.job_name, "training job name")
        return TrainingSettings(
            self.role_arn,
            self.bucket,
            self.region,
            validate_prefix(self.prefix),
            self.instance_type or DEFAULT_TRAINING_INSTANCE[algorithm],
            int(self.instance_count),
            int(self.volume_gb),
            int(self.max_runtime_s),
            self.job_name or default_job_name(algorithm),
        )

    def spec(self, algorithm: Algorithm, hyperparameters: Mapping[str, str], *, with_test: bool) -> TrainingJobSpec:
        """The :class:`TrainingJobSpec` of these (validated) settings."""
        return TrainingJobSpec(
            algorithm=algorithm,
            hyperparameters=hyperparameters,
            instance_type=str(self.instance_type),
            root=root_prefix(self.prefix),
            with_test=with_test,
            instance_count=self.instance_count,
            volume_gb=self.volume_gb,
            max_runtime_s=self.max_runtime_s,
        )


def _request(s: TrainingSettings, spec: TrainingJobSpec) -> dict[str, Any]:
    request = spec.create_training_job_request(
        bucket=s.bucket, job_name=str(s.job_name), role_arn=s.role_arn, image=image_uri(spec.algorithm, s.region)
    )
    request["Tags"] = project_tags(spec.algorithm)
    return request


def rcf_training_request(
    settings: TrainingSettings, hyperparameters: Mapping[str, Any], *, with_test: bool = True
) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request of the built-in Random Cut Forest (channels: :data:`spec.CHANNELS`).

    Hyperparameters are validated against SageMaker's ranges and sent as strings; ``feature_dim``
    defaults to the 4 feature columns.
    """
    s = settings.validated(Algorithm.RCF)
    hp = rcf_hyperparameters({"feature_dim": 4, **hyperparameters})
    return _request(s, s.spec(Algorithm.RCF, hp, with_test=with_test))


def deepar_training_request(
    settings: TrainingSettings, hyperparameters: Mapping[str, Any] | None = None, *, with_test: bool = True
) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request of the built-in DeepAR forecaster.

    Hyperparameters: the AWS blog's (10min, context/prediction 144, 1 layer, 400 epochs, early stopping
    40, batch 32, learning rate 5e-4) with ``hyperparameters`` overriding them, as strings. Channels
    ``train`` and ``test`` (JSON Lines), both ``FullyReplicated``.
    """
    s = settings.validated(Algorithm.DEEPAR)
    hp = deepar_hyperparameters(hyperparameters)
    return _request(s, s.spec(Algorithm.DEEPAR, hp, with_test=with_test))


@dataclass
class TrainingResult:
    """A finished job: its name, status, final metrics ``{name: value}`` and model artifact URI."""

    job_name: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    model_artifacts: str | None = None
    image: str | None = None
    role_arn: str | None = None


def start_training_job(client: Any, request: dict[str, Any]) -> str:
    """Send the request; returns the job name. AWS errors become :class:`SageMakerError`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.create_training_job(**request)
    except (ClientError, BotoCoreError) as exc:
        raise SageMakerError(f"CreateTrainingJob {request['TrainingJobName']} was refused: {exc}") from exc
    return request["TrainingJobName"]


def describe_result(desc: dict[str, Any]) -> TrainingResult:
    """A ``DescribeTrainingJob`` response -> :class:`TrainingResult`."""
    metrics = {m["MetricName"]: float(m["Value"]) for m in desc.get("FinalMetricDataList") or []}
    return TrainingResult(
        job_name=desc["TrainingJobName"],
        status=desc["TrainingJobStatus"],
        metrics=metrics,
        model_artifacts=(desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        image=(desc.get("AlgorithmSpecification") or {}).get("TrainingImage"),
        role_arn=desc.get("RoleArn"),
    )


def wait_for_training_job(
    client: Any,
    job_name: str,
    *,
    poll_seconds: float = 30.0,
    timeout_s: float = 6 * 3600,
    on_progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TrainingResult:
    """Poll ``DescribeTrainingJob`` until the job ends; report each status change via ``on_progress``.

    Returns the result of a ``Completed`` job; raises :class:`JobFailedError` (with SageMaker's
    FailureReason) for ``Failed``/``Stopped`` and :class:`WaitTimeoutError` after ``timeout_s``.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    started = time.monotonic()
    last = None
    while True:
        try:
            desc = client.describe_training_job(TrainingJobName=job_name)
        except (ClientError, BotoCoreError) as exc:
            raise SageMakerError(f"cannot describe training job {job_name}: {exc}") from exc
        status, secondary = desc["TrainingJobStatus"], desc.get("SecondaryStatus", "")
        if on_progress is not None and (status, secondary) != last:
            on_progress(f"[{time.monotonic() - started:6.0f}s] {job_name}: {status} / {secondary}")
        last = (status, secondary)
        if status == "Completed":
            return describe_result(desc)
        if status in ("Failed", "Stopped"):
            raise JobFailedError(job_name, status, desc.get("FailureReason"))
        if time.monotonic() - started > timeout_s:
            raise WaitTimeoutError(
                f"training job {job_name} still {status} after {timeout_s:.0f} s; it keeps "
                "running: check the console or run this command again later"
            )
        sleep(poll_seconds)


REPORTED_METRICS: dict[str, tuple[str, ...]] = {
    "rcf": ("test:f1", "test:precision", "test:recall", "test:accuracy"),
    "deepar": ("test:RMSE", "test:mean_wQuantileLoss", "train:final_loss"),
}


def format_result(algorithm: str, result: TrainingResult) -> str:
    """Human summary: the headline metrics first (RCF test F1; DeepAR RMSE, wQuantileLoss), then the rest."""
    lines = [f"training job {result.job_name}: {result.status}"]
    headline = [m for m in REPORTED_METRICS[algorithm] if m in result.metrics]
    others = sorted(m for m in result.metrics if m not in headline)
    for name in headline + others:
        lines.append(f"  {name} = {result.metrics[name]:.6g}")
    if not result.metrics:
        lines.append("  (the job reported no metrics; RCF reports test metrics only with a test channel)")
    lines.append(f"  model artifact: {result.model_artifacts}")
    return "\n".join(lines)
