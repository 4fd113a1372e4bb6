"""Features stream -> the streaming detectors -> detections stream.

Environment: ``STATE_BUCKET``, ``STATE_KEY`` (detector/state.bin), ``DETECTIONS_STREAM_NAME``;
``DETECTORS`` (comma-separated: ``baseline``, the default, and/or ``rcf-streaming``, the KDA-faithful RCF
with explanation), ``TIMEZONE`` (the site's IANA zone, for the baseline's local time of day),
``WINDOW_FREQ``; for ``rcf-streaming``: ``RCF_NUM_TREES``, ``RCF_SAMPLE_SIZE``, ``RCF_TIME_DECAY``,
``RCF_SHINGLE_SIZE``, ``RCF_WITH_DIRECTIONALITY``. The detectors' state lives in S3 (conditional writes),
so a cold start continues the same stream. A record that is not a window (not base64, not JSON, a NaN or
infinite feature) fails alone, its reason logged (``poison record``). Windows the event-time policy
rejects are logged, counted (``EventTimeRejected``) and sent to ``FAILURE_QUEUE_URL``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from clickstream_anomaly.aws import runtime
from clickstream_anomaly.aws.batch import corrupt_state_reported, logging_batch_processor
from clickstream_anomaly.records import Window

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
processor = logging_batch_processor(logger)
metrics = Metrics()


def record_handler(record: KinesisStreamRecord) -> Window:
    return Window.from_json(record.kinesis.data_as_bytes())


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    with processor(records=event["Records"], handler=record_handler):
        processed = processor.process()
    windows = [result for status, result, _ in processed if status == "success"]
    with corrupt_state_reported(logger, metrics):
        detections, rejections = runtime.detect(windows)
    for rejection in rejections[:20]:  # the reasons; every one is in the failure queue
        logger.warning("event time rejected", extra={"reason": rejection.reason, "record": rejection.record})
    metrics.add_metric(name="EventTimeRejected", unit=MetricUnit.Count, value=len(rejections))
    metrics.add_metric(name="WindowsScored", unit=MetricUnit.Count, value=len(detections))
    metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=len(processed) - len(windows))
    return processor.response()
