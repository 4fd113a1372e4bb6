"""The job on Amazon Managed Service for Apache Flink: the clicks stream in, the features and detections
streams out (the formats the detector and alerter Lambdas already read).

The settings are the application's property groups (``/etc/flink/application_properties.json`` on MSF;
``APPLICATION_PROPERTIES`` names another file locally): ``ClicksStream`` (``stream.arn``, ``aws.region``,
optional ``source.init.position``, ``aws.endpoint``), ``FeaturesStream`` and ``DetectionsStream``
(``stream.name``, ``aws.region``), ``Job`` (``freq``, ``allowed_lateness``, ``out_of_orderness``,
``idle_timeout``, ``detectors``, ``timezone``, ``site``). The connector classes come from the jar of
``flink-connector-aws-kinesis-streams`` 5.x-1.20 that MSF loads beside the zip (``jarfile``).

Not run, not even imported against the jar: the connector's source (``KinesisStreamsSource``, Flink's FLIP-27
source) has no PyFlink wrapper in 1.20, so it is built through the Java gateway with the builder names of the
5.0 connector, and Maven resolved none of ``flink-connector-aws-kinesis-streams`` 5.0.0-1.20 / 5.1.0-1.20 or
``flink-connector-kinesis`` 5.0.0-1.20 on this machine (docs/flink.md). Check it against the jar first.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.datastream.connectors import Source
from pyflink.datastream.connectors.kinesis import KinesisStreamsSink, PartitionKeyGenerator
from pyflink.java_gateway import get_gateway

from .job import build
from .logic import JobSettings

PROPERTIES = "/etc/flink/application_properties.json"
FEATURES_PARTITION_KEY = "windows"  # as the Lambda aggregator: one key keeps the windows in time order
log = logging.getLogger(__name__)


def property_groups(path: str | Path) -> dict[str, dict[str, str]]:
    """``{PropertyGroupId: PropertyMap}`` of an MSF application properties file."""
    groups = json.loads(Path(path).read_text(encoding="utf-8"))
    return {g["PropertyGroupId"]: dict(g["PropertyMap"]) for g in groups}


def job_settings(group: Mapping[str, str]) -> JobSettings:
    """:class:`JobSettings` from the ``Job`` property group (strings), the defaults for what it leaves out."""
    base = JobSettings()
    return JobSettings(
        freq=group.get("freq", base.freq),
        allowed_lateness=group.get("allowed_lateness", base.allowed_lateness),
        out_of_orderness=float(group.get("out_of_orderness", base.out_of_orderness)),
        idle_timeout=float(group.get("idle_timeout", base.idle_timeout)),
        detectors=tuple(d.strip() for d in group.get("detectors", ",".join(base.detectors)).split(",") if d.strip()),
        timezone=group.get("timezone", base.timezone),
        site=group.get("site", base.site),
    )


def kinesis_source(group: Mapping[str, str]) -> Source:
    """``KinesisStreamsSource`` on ``stream.arn``: each record's data as UTF-8 text."""
    jvm = get_gateway().jvm
    config = Configuration()
    for key, value in group.items():
        if key != "stream.arn":
            config.set_string(key, value)
    schema = jvm.org.apache.flink.connector.kinesis.source.serialization.KinesisDeserializationSchema.of(
        SimpleStringSchema()._j_deserialization_schema
    )
    builder = jvm.org.apache.flink.connector.kinesis.source.KinesisStreamsSource.builder()
    j_source = (
        builder.setStreamArn(group["stream.arn"])
        .setSourceConfig(config._j_configuration)
        .setDeserializationSchema(schema)
        .build()
    )
    return Source(j_source)


def kinesis_sink(group: Mapping[str, str], partition_key: PartitionKeyGenerator) -> KinesisStreamsSink:
    """``KinesisStreamsSink`` to ``stream.name``, the other keys as client properties (``aws.region``, ...)."""
    props = {k: v for k, v in group.items() if k != "stream.name"}
    return (
        KinesisStreamsSink.builder()
        .set_kinesis_client_properties(props)
        .set_serialization_schema(SimpleStringSchema())
        .set_partition_key_generator(partition_key)
        .set_stream_name(group["stream.name"])
        .build()
    )


def log_rejects(stream: DataStream, what: str) -> None:
    """Rejected clicks go to the application log (CloudWatch Logs on MSF), one line each; the job's counters
    (``MalformedClicks``, ``LateClicksDropped``) are the metrics."""

    def emit(value: str) -> Any:
        log.warning("%s click: %s", what, value)
        return value

    stream.map(emit).name(f"log {what} clicks")


def main(properties: str | None = None) -> None:
    groups = property_groups(properties or os.environ.get("APPLICATION_PROPERTIES", PROPERTIES))
    settings = job_settings(groups.get("Job", {}))
    env = StreamExecutionEnvironment.get_execution_environment()
    records = env.from_source(kinesis_source(groups["ClicksStream"]), WatermarkStrategy.no_watermarks(), "clicks")
    streams = build(records, settings)
    streams.windows.sink_to(kinesis_sink(groups["FeaturesStream"], PartitionKeyGenerator.fixed())).name("features")
    streams.detections.sink_to(kinesis_sink(groups["DetectionsStream"], PartitionKeyGenerator.fixed())).name(
        "detections"
    )
    log_rejects(streams.malformed, "malformed")
    log_rejects(streams.late, "late")
    env.execute("clickstream-anomaly")


if __name__ == "__main__":
    main()
