"""Features stream -> SageMaker RCF endpoint and DeepAR endpoint (when configured) -> detections stream.

Environment: ``RCF_ENDPOINT_NAME``, ``DEEPAR_ENDPOINT_NAME`` (empty = disabled), ``DETECTIONS_STREAM_NAME``,
``STATE_BUCKET`` (recent clicks history for DeepAR's context). Endpoint errors and throttling are
retried, then the record is reported failed; the records after it in the batch are failed too, so the
windows are scored in order when Lambda retries. A window dated before 2000 or ahead of the wall clock
(event-time policy) is not scored: logged, counted (``EventTimeRejected``), sent to ``FAILURE_QUEUE_URL``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from clickstream_anomaly.aws import runtime
from clickstream_anomaly.records import Window
from clickstream_anomaly.streaming.state import CorruptState

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
logger = Logger()
metrics = Metrics()
_failed: dict[str, bool] = {"batch": False}


def record_handler(record: KinesisStreamRecord) -> int:
    if _failed["batch"]:
        raise RuntimeError("an earlier record of this batch failed; retried in order")
    try:
        window = Window.from_json(record.kinesis.data_as_bytes())
        detections, rejection = runtime.score(window)
    except Exception as exc:
        _failed["batch"] = True
        if isinstance(exc, CorruptState):  # its alarm fires; the message names the object and the recovery
            metrics.add_metric(name="CorruptState", unit=MetricUnit.Count, value=1)
        logger.error("scoring failed", extra={"sequence_number": record.kinesis.sequence_number, "reason": repr(exc)})
        raise
    if rejection is not None:  # sent to the failure queue with its reason
        logger.warning("event time rejected", extra={"reason": rejection.reason, "record": rejection.record})
        metrics.add_metric(name="EventTimeRejected", unit=MetricUnit.Count, value=1)
    return len(detections)


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    _failed["batch"] = False
    with processor(records=event["Records"], handler=record_handler):
        processed = processor.process()
    metrics.add_metric(
        name="Detections", unit=MetricUnit.Count, value=sum(r for status, r, _ in processed if status == "success")
    )
    metrics.add_metric(
        name="ScoringFailures", unit=MetricUnit.Count, value=sum(status == "fail" for status, _, _ in processed)
    )
    return processor.response()
