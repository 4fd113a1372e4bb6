"""S3 ObjectCreated (click logs, optionally gzip) -> clicks stream.

Environment: ``CLICKS_STREAM_NAME``; ``LANDING_FORMAT`` (default ``clicks``: the project's CSV or JSON
Lines; ``auto`` or a source format: CloudFront, ALB, combined... with ``SOURCE_SETTINGS`` and the salt of
``USER_SALT_SECRET_ARN``); ``REJECTED_PREFIX`` (default ``rejected/``) where bad lines go with
their reason; ``CLICKS_AGGREGATE_BYTES`` (default 25600: a user's clicks share Kinesis records of at most
25 KiB, as ``produce`` does; ``0`` = one click per record). Metrics (in clicks): ``RecordsSent``,
``RecordsRejected``, ``RecordsUnsent``. Rejected lines are logged as a warning (the first reasons and the
``rejected/`` key); records not sent (after the retries, or 30 s before the Lambda times out) as an error
with the ``unsent/`` key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source

from clickstream_anomaly.aws import runtime

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict:
    stream = runtime.env("CLICKS_STREAM_NAME")
    prefix = runtime.env("REJECTED_PREFIX", "rejected/")
    results = []
    for record in event.records:
        key = unquote_plus(record.s3.get_object.key)
        out = runtime.produce_s3_object(
            record.s3.bucket.name,
            key,
            stream=stream,
            rejected_prefix=prefix,
            remaining_ms=context.get_remaining_time_in_millis,
        )
        logger.info("object sent", extra={"object": vars(out)})
        if out.rejected:
            logger.warning(
                "bad lines rejected",
                extra={"rejected": out.rejected, "rejected_key": out.rejected_key, "first": out.bad_lines},
            )
        if out.error and not out.unsent:
            logger.error("object not read", extra={"object_key": key, "reason": out.error})
        if out.unsent:
            reason = out.stopped or out.error
            logger.error(
                "records not sent", extra={"unsent": out.unsent, "unsent_key": out.unsent_key, "reason": reason}
            )
        metrics.add_metric(name="RecordsSent", unit=MetricUnit.Count, value=out.sent)
        metrics.add_metric(name="RecordsRejected", unit=MetricUnit.Count, value=out.rejected)
        metrics.add_metric(name="RecordsUnsent", unit=MetricUnit.Count, value=out.unsent)
        results.append(vars(out))
    return {"objects": results}
