"""Shared Lambda plumbing: the code asset, the function factory and the Kinesis event source defaults.

Every pipeline function runs the same asset: the project root restricted to ``clickstream_anomaly/`` and
``lambdas/`` (plain files, no Docker, no bundling), with handler ``lambdas.<name>.app.handler``. numpy and
pandas come from the AWS SDK for pandas layer and Powertools from its layer (:mod:`stacks.layers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.layers import RUNTIME
from stacks.nag import acknowledge, lambda_basics

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Glob rules applied to the project root: ship only the two code folders, no caches or dotfiles.
ASSET_EXCLUDE: tuple[str, ...] = (
    "*",
    ".*",
    "!clickstream_anomaly",
    "!clickstream_anomaly/**",
    "!lambdas",
    "!lambdas/**",
    "**/.*",
    "**/__pycache__",
    "**/*.pyc",
    "**/tests",
)

_R = logs.RetentionDays
#: Log retention settings (days) -> CDK enum.
LOG_RETENTION: dict[int, logs.RetentionDays] = {
    1: _R.ONE_DAY,
    3: _R.THREE_DAYS,
    5: _R.FIVE_DAYS,
    7: _R.ONE_WEEK,
    14: _R.TWO_WEEKS,
    30: _R.ONE_MONTH,
    60: _R.TWO_MONTHS,
    90: _R.THREE_MONTHS,
    180: _R.SIX_MONTHS,
    365: _R.ONE_YEAR,
}


def project_code(root: Path = PROJECT_ROOT) -> lambda_.Code:
    """The one code asset of all pipeline Lambdas (``clickstream_anomaly/`` + ``lambdas/``)."""
    return lambda_.Code.from_asset(str(root), exclude=list(ASSET_EXCLUDE), ignore_mode=IgnoreMode.GLOB)


@dataclass(frozen=True)
class FunctionDefaults:
    """What every pipeline function shares (built once by the stack)."""

    code: lambda_.Code
    layers: Sequence[lambda_.ILayerVersion]
    memory_mb: int
    log_level: str
    metrics_namespace: str
    log_retention: logs.RetentionDays
    removal_policy: RemovalPolicy


def pipeline_function(
    scope: Construct,
    id_: str,
    *,
    name: str,
    defaults: FunctionDefaults,
    environment: Mapping[str, str],
    timeout_seconds: int = 60,
    description: str = "",
) -> lambda_.Function:
    """A Lambda running ``lambdas.<name>.app.handler`` with the shared layers and Powertools environment.

    ``POWERTOOLS_SERVICE_NAME`` is ``name``; the function logs to its own log group with bounded retention.
    """
    log_group = logs.LogGroup(
        scope, f"{id_}Logs", retention=defaults.log_retention, removal_policy=defaults.removal_policy
    )
    env = {
        "POWERTOOLS_SERVICE_NAME": name,
        "POWERTOOLS_METRICS_NAMESPACE": defaults.metrics_namespace,
        "LOG_LEVEL": defaults.log_level,
        **environment,
    }
    function = lambda_.Function(
        scope,
        id_,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.X86_64,
        handler=f"lambdas.{name}.app.handler",
        code=defaults.code,
        layers=list(defaults.layers),
        memory_size=defaults.memory_mb,
        timeout=Duration.seconds(timeout_seconds),
        environment=env,
        log_group=log_group,
        description=description or f"clickstream anomaly pipeline: {name}",
    )
    lambda_basics(function)
    return function


def failure_queue(scope: Construct, id_: str) -> sqs.Queue:
    """An encrypted, SSL-only SQS queue that receives the metadata of batches a function gave up on."""
    queue = sqs.Queue(
        scope, id_, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=Duration.days(14)
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "this queue is itself the failure destination (dead-letter queue) of a Lambda event source",
    )
    return queue


def kinesis_source(
    stream: kinesis.IStream,
    *,
    on_failure: sqs.IQueue,
    retry_attempts: int,
    max_record_age: Duration,
    batch_size: int = 100,
    max_batching_seconds: int = 1,
) -> sources.KinesisEventSource:
    """Kinesis event source with the production defaults: bisect on error, bounded retries and record age,
    partial batch responses (``ReportBatchItemFailures``) and an SQS failure destination."""
    return sources.KinesisEventSource(
        stream,
        starting_position=lambda_.StartingPosition.TRIM_HORIZON,
        batch_size=batch_size,
        max_batching_window=Duration.seconds(max_batching_seconds),
        bisect_batch_on_error=True,
        retry_attempts=retry_attempts,
        max_record_age=max_record_age,
        report_batch_item_failures=True,
        on_failure=sources.SqsDlq(on_failure),
    )
