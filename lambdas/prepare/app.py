"""Step Functions task: lake window features -> SageMaker training channels
(:mod:`clickstream_anomaly.aws.training.lake`).

Environment: ``LAKE_BUCKET``, ``MODELS_BUCKET``, ``TRAINING_DAYS``, ``WINDOW_FREQ``, ``PREDICTION_LENGTH``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clickstream_anomaly.aws.clients import client
from clickstream_anomaly.aws.training.lake import (  # noqa: F401  (the step's parts, for tests)
    channel_files,
    day_prefixes,
    parse_objects,
    prepare,
    windows_frame,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return prepare(event, client("s3"), os.environ, datetime.now(UTC))
