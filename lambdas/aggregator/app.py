"""Clicks stream -> 10-minute windows -> features stream; an EventBridge tick closes windows with no clicks.

Environment: ``FEATURES_STREAM_NAME``, ``STATE_BUCKET``, ``WINDOW_FREQ`` (10min), ``ALLOWED_LATENESS``
(10min). Event source mapping: ``ReportBatchItemFailures``, ``ParallelizationFactor`` 1 (per-shard
order is what makes the re-delivery check exact). A record is one click or an aggregated record of several
(newline-separated, :func:`clickstream_anomaly.records.decode_click_record`); with
``CLICKS_FORMAT=cloudfront-realtime`` also a CloudFront real-time log record (``SOURCE_SETTINGS``: its
fields and the click rules; ``USER_SALT_SECRET_ARN``: the user hash's salt; requests that are not clicks
are counted in ``RequestsFiltered``). A record with a bad click
fails alone (its reason logged) and goes to the failure destination after the retries; the shard keeps
moving. The good clicks of an aggregated record with a bad one are counted once (its sequence number is
checkpointed, so the retries do not count them again). Clicks the event-time policy rejects (too far
ahead of the shard's clock or of the wall clock, or before 2000) are not applied: each is logged with its
reason, counted (``EventTimeRejected``) and sent to the function's failure queue (``FAILURE_QUEUE_URL``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from clickstream_anomaly.aws import runtime
from clickstream_anomaly.aws.batch import corrupt_state_reported, logging_batch_processor
from clickstream_anomaly.records import Click, RecordError, decode_click_record
from clickstream_anomaly.sources.derive import Filtered

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
processor = logging_batch_processor(logger)
metrics = Metrics()


def record_handler(
    record: KinesisStreamRecord, partial: list | None = None, decoded: dict | None = None
) -> tuple[str, str, list[Click]]:
    """``(shard, sequence number, clicks)`` of one record (``decoded``: the batch's, by sequence number);
    raises :class:`RecordError` for a bad click, after adding the record's good clicks to ``partial``."""
    shard, seq = record.event_id.split(":")[0], record.kinesis.sequence_number
    data = record.kinesis.data_as_bytes()
    clicks, errors = decoded[seq] if decoded and seq in decoded else decode_click_record(data)
    if errors:
        if clicks and partial is not None:
            partial.append((shard, seq, clicks))
        reason = "; ".join(str(e) for e in errors)
        raise RecordError(f"{reason} ({len(errors)} bad click(s), {len(clicks)} good)")
    return shard, seq, clicks


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    cfg = runtime.AggregatorConfig.from_env()
    response: PartialItemFailureResponse | dict[str, Any] = {}
    records: list = []
    shards: tuple[str, ...] = ()
    arn = None
    if event.get("source") != "aws.events":  # a Kinesis batch (else: the scheduled tick)
        partial: list = []
        filtered = Filtered()
        decoded = runtime.decode_clicks(event["Records"], filtered)
        handle = functools.partial(record_handler, partial=partial, decoded=decoded)
        with processor(records=event["Records"], handler=handle):
            processed = processor.process()
        records = [result for status, result, _ in processed if status == "success"] + partial
        arn = event["Records"][0].get("eventSourceARN")
        shards = runtime.open_shards(arn, {r["eventID"].split(":")[0] for r in event["Records"]})
        response = processor.response()
        poison = sum(status == "fail" for status, _, _ in processed)
        metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=poison)
        if decoded is not None:
            metrics.add_metric(name="RequestsFiltered", unit=MetricUnit.Count, value=filtered.count)
    with corrupt_state_reported(logger, metrics):
        stats = runtime.aggregate(cfg, records, shards, arn)
    for rejection in stats.rejections[:20]:  # the reasons; every one is in the failure queue
        logger.warning("event time rejected", extra={"reason": rejection.reason, **rejection.source})
    for name, value in (
        ("EventTimeRejected", stats.rejected),
        ("Clicks", stats.clicks),
        ("DuplicateClicks", stats.duplicates),
        ("LateClicksDropped", stats.late_dropped),
        ("WindowsEmitted", stats.windows_sent),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return response
