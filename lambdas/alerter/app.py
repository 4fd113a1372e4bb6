"""Detections (Kinesis) or KDA SQL output rows -> threshold -> EMF metrics -> incidents -> SNS.

Environment: ``TOPIC_ARN``, ``STATE_BUCKET``, ``THRESHOLD_MODE`` (static|sigma), ``THRESHOLD`` (2.6),
``SIGMA_K`` (3), ``METRICS_NAMESPACE`` (ClickstreamAnomaly). KDA's Lambda output event
(``records`` with ``recordId`` and base64 rows holding ``ANOMALY_SCORE``/``ANOMALY_EXPLANATION``) gets
KDA's response ``{"records": [{"recordId", "result": "Ok" | "DeliveryFailed"}]}``. A record that is not a
detection fails alone, its reason logged (``poison record``); detections dated outside the event-time
policy or with a score that is not finite are logged, counted (``EventTimeRejected``) and sent to
``FAILURE_QUEUE_URL``.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from clickstream_anomaly.aws import runtime
from clickstream_anomaly.aws.batch import corrupt_state_reported, logging_batch_processor
from clickstream_anomaly.records import Detection
from clickstream_anomaly.streaming.alerting import metric_values
from clickstream_anomaly.streaming.detection import detection_from_kda_row
from clickstream_anomaly.streaming.eventtime import Rejection

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
processor = logging_batch_processor(logger)
metrics = Metrics()


def record_handler(record: KinesisStreamRecord) -> Detection:
    return Detection.from_mapping(json.loads(record.kinesis.data_as_bytes()))


def emit(judged: list[Detection], published: list, rejections: list[Rejection]) -> None:
    namespace = runtime.env("METRICS_NAMESPACE", "ClickstreamAnomaly")
    for det in judged:  # one EMF blob per detection: its own detector dimension
        blob = EphemeralMetrics(namespace=namespace)
        blob.add_dimension(name="detector", value=det.detector)
        for name, value, unit in metric_values(det):
            blob.add_metric(name=name, unit=unit, value=value)
        blob.flush_metrics()
    metrics.add_metric(name="AlertsPublished", unit=MetricUnit.Count, value=len(published))
    metrics.add_metric(name="EventTimeRejected", unit=MetricUnit.Count, value=len(rejections))
    for rejection in rejections[:20]:  # the reasons; every one is in the failure queue
        logger.warning("detection rejected", extra={"reason": rejection.reason, "record": rejection.record})
    for alert in published:
        logger.info("alert published", extra={"key": alert.key, "subject": alert.subject})


def kda_handler(event: dict) -> dict:
    dets, results = [], []
    for rec in event["records"]:
        try:
            dets.append(detection_from_kda_row(json.loads(base64.b64decode(rec["data"]))))
        except (ValueError, KeyError) as exc:  # a row KDA re-sending cannot fix: logged, counted
            logger.error("bad KDA row", extra={"recordId": rec.get("recordId"), "reason": str(exc)})
            metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=1)
        results.append(rec["recordId"])
    try:
        with corrupt_state_reported(logger, metrics):
            emit(*runtime.alert(dets))
        status = "Ok"
    except Exception:
        logger.exception("alerting failed; KDA will re-deliver")
        status = "DeliveryFailed"
    return {"records": [{"recordId": rid, "result": status} for rid in results]}


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    if "records" in event and "Records" not in event:
        return kda_handler(event)
    with processor(records=event["Records"], handler=record_handler):
        processed = processor.process()
    with corrupt_state_reported(logger, metrics):
        emit(*runtime.alert([result for status, result, _ in processed if status == "success"]))
    return processor.response()
