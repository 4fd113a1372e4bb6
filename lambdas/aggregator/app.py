"""Clicks stream -> 10-minute windows -> features stream; an EventBridge tick closes windows with no clicks.

Environment: ``FEATURES_STREAM_NAME``, ``STATE_BUCKET``, ``WINDOW_FREQ`` (10min), ``ALLOWED_LATENESS``
(10min). Event source mapping: ``ReportBatchItemFailures``, ``ParallelizationFactor`` 1 (per-shard
order is what makes the re-delivery check exact). A record that is not a click fails alone (its
reason logged) and goes to the failure destination after the retries; the shard keeps moving.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from clickstream_anomaly.records import Click, RecordError
from clickstream_anomaly.streaming import runtime

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
logger = Logger()
metrics = Metrics()


def record_handler(record: KinesisStreamRecord) -> tuple[str, str, Click]:
    try:
        click = Click.from_json(record.kinesis.data_as_bytes())
    except RecordError as exc:
        logger.error("poison record", extra={"sequence_number": record.kinesis.sequence_number,
                                             "reason": str(exc)})
        raise
    return record.event_id.split(":")[0], record.kinesis.sequence_number, click


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    cfg = runtime.AggregatorConfig.from_env()
    response: dict = {}
    records: list = []
    shards: tuple[str, ...] = ()
    if event.get("source") != "aws.events":  # a Kinesis batch (else: the scheduled tick)
        with processor(records=event["Records"], handler=record_handler):
            processed = processor.process()
        records = [result for status, result, _ in processed if status == "success"]
        shards = runtime.open_shards(event["Records"][0].get("eventSourceARN"))
        response = processor.response()
        metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=len(processed) - len(records))
    stats = runtime.aggregate(cfg, records, shards)
    for name, value in (("Clicks", stats.clicks), ("DuplicateClicks", stats.duplicates),
                        ("LateClicksDropped", stats.late_dropped), ("WindowsEmitted", stats.windows_sent)):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return response
