"""The job on Amazon Managed Service for Apache Flink: the clicks stream in, the features and detections
streams out (the formats the detector and alerter Lambdas already read).

The settings are the application's property groups (``/etc/flink/application_properties.json`` on MSF;
the ``APPLICATION_PROPERTIES`` environment variable names another file for a local run): ``ClicksStream``
(``stream.name``, ``aws.region``, optional ``flink.stream.initpos``, default ``LATEST``, and
``aws.endpoint``), ``FeaturesStream`` and ``DetectionsStream`` (``stream.name``, ``aws.region``, optional
``aws.endpoint``), ``Job`` (:func:`job_settings`). Every other key of a stream group (``stream.arn`` aside)
goes to the connector as a client property (``aws.credentials.provider``, ``aws.http.protocol.version``...).

The connector is ``flink-connector-kinesis`` (flink/pom.xml, ``lib/clickstream-flink-connectors.jar`` in
the zip): the legacy ``FlinkKinesisConsumer`` source, whose shard sequence numbers are checkpointed, and
``KinesisStreamsSink``, both through PyFlink's own wrappers. The source's deserialization schema is ours,
``ShardTaggedSchema`` (flink/src/main/java, in the same jar): it tags each record with its shard id, and
the job's windows operator keeps one event clock per shard, its watermark their minimum over the shards not
idle (:mod:`.shards`). So any parallelism reads a backlog without losing a slower shard's clicks as late.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import site
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyflink.common import Configuration
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.datastream.connectors.kinesis import (
    FlinkKinesisConsumer,
    KinesisShardAssigner,
    KinesisStreamsSink,
    PartitionKeyGenerator,
)

import clickstream_anomaly
from clickstream_anomaly.sources.settings import SourceSettings

from .job import JARFILE, build, java_class
from .logic import JobSettings

PROPERTIES = "/etc/flink/application_properties.json"
RUN_OPTIONS = "kinesis.analytics.flink.run.options"
LOCAL_RUN = "LocalRun"  # local runs only: Flink configuration for the mini-cluster
APP_ROOT = Path(__file__).resolve().parents[1]  # the zip's root: main.py, clickstream_job/, lib/
NOT_CLIENT_PROPERTIES = ("stream.name", "stream.arn")
EXECUTION_MODES = ("thread", "process")  # python.execution-mode; the first is the default
log = logging.getLogger(__name__)


def property_groups(path: str | Path) -> dict[str, dict[str, str]]:
    """``{PropertyGroupId: PropertyMap}`` of an MSF application properties file."""
    groups = json.loads(Path(path).read_text(encoding="utf-8"))
    return {g["PropertyGroupId"]: dict(g["PropertyMap"]) for g in groups}


def job_settings(group: Mapping[str, str]) -> JobSettings:
    """:class:`JobSettings` from the ``Job`` property group (strings), the defaults for what it leaves out."""
    base = JobSettings()
    source = group.get("source_settings")
    return JobSettings(
        freq=group.get("freq", base.freq),
        allowed_lateness=group.get("allowed_lateness", base.allowed_lateness),
        out_of_orderness=float(group.get("out_of_orderness", base.out_of_orderness)),
        idle_timeout=float(group.get("idle_timeout", base.idle_timeout)),
        detectors=tuple(d.strip() for d in group.get("detectors", ",".join(base.detectors)).split(",") if d.strip()),
        timezone=group.get("timezone", base.timezone),
        site=group.get("site", base.site),
        clicks_format=group.get("clicks_format", base.clicks_format),
        source=SourceSettings.from_mapping(json.loads(source)) if source else None,
        bundle_records=int(group.get("bundle_records", base.bundle_records)),
        bundle_ms=int(group.get("bundle_ms", base.bundle_ms)),
        detector_rules=group.get("detector_rules", base.detector_rules),
    )


def client_properties(group: Mapping[str, str]) -> dict[str, str]:
    """A stream group's connector properties: every key but the stream's name and ARN."""
    return {k: v for k, v in group.items() if k not in NOT_CLIENT_PROPERTIES}


#: The Kinesis source's deserialization schema (flink/src/main/java): ``shard id + SHARD_SEPARATOR + data``.
SHARD_TAGGED_SCHEMA = "io.github.clickstream_anomaly.flink.ShardTaggedSchema"


def shard_tagged_schema() -> Any:
    """Our Java ``ShardTaggedSchema`` (a ``KinesisDeserializationSchema``: each record's data as UTF-8 text
    after its shard id, :func:`~.shards.split_record`), as the Java object itself: PyFlink 1.20's
    ``FlinkKinesisConsumer`` hands anything but a ``DeserializationSchema`` to the Java constructor as it is
    (its own ``KinesisDeserializationSchema`` wrapper would not be unwrapped)."""
    return java_class(SHARD_TAGGED_SCHEMA)()


def kinesis_source(group: Mapping[str, str]) -> FlinkKinesisConsumer:
    """``FlinkKinesisConsumer`` on ``stream.name`` from ``flink.stream.initpos`` (LATEST by default): each
    record's data as UTF-8 text, tagged with its shard id. The uniform shard assigner spreads the shards
    evenly over the subtasks."""
    props = {"flink.stream.initpos": "LATEST", **client_properties(group)}
    consumer = FlinkKinesisConsumer(group["stream.name"], shard_tagged_schema(), props)
    return consumer.set_shard_assigner(KinesisShardAssigner.uniform_shard_assigner())


def kinesis_sink(group: Mapping[str, str]) -> KinesisStreamsSink:
    """``KinesisStreamsSink`` to ``stream.name``; one partition key per writing subtask (one subtask writes
    each site's windows, so they stay in time order on one shard, as the Lambda aggregator keeps them)."""
    return (
        KinesisStreamsSink.builder()
        .set_kinesis_client_properties(client_properties(group))
        .set_serialization_schema(SimpleStringSchema())
        .set_partition_key_generator(PartitionKeyGenerator.fixed())
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


def execution_config(group: Mapping[str, str]) -> dict[str, str]:
    """The Python execution settings from the ``Job`` group's ``python_execution_mode`` (default
    ``thread``, the first of :data:`EXECUTION_MODES`: the Python operators run inside the JVM). The
    embedded interpreter of ``thread`` mode starts from the base Python, so it also gets this interpreter's
    site-packages (``python.pythonpath``: PyFlink and its numpy/pandas); the job's own code reaches it, as
    the process-mode workers, through :func:`environment`'s ``add_python_file``."""
    mode = group.get("python_execution_mode", EXECUTION_MODES[0])
    if mode not in EXECUTION_MODES:
        raise ValueError(f"python_execution_mode must be one of {', '.join(EXECUTION_MODES)}, got {mode!r}")
    config = {"python.execution-mode": mode}
    if mode == "thread":
        config["python.pythonpath"] = os.pathsep.join(site.getsitepackages())
    return config


def environment(groups: Mapping[str, Mapping[str, str]], local: bool) -> StreamExecutionEnvironment:
    """The execution environment; the job's two packages go to the Python workers (:func:`stage_packages`,
    so MSF needs no ``pyFiles``), in :func:`execution_config`'s mode. Locally it also loads the connector jar
    (``jarfile``), runs this interpreter and takes the Flink settings of the local-only ``LocalRun`` group
    (``parallelism.default``, ...); on MSF the service sets parallelism and checkpointing."""
    config = Configuration()
    for key, value in execution_config(groups.get("Job", {})).items():
        config.set_string(key, value)
    run_options = groups.get(RUN_OPTIONS, {})
    if local:
        for key, value in groups.get(LOCAL_RUN, {}).items():
            config.set_string(key, value)
        jarfile = run_options.get("jarfile", JARFILE)
        jar = APP_ROOT / jarfile  # the extracted zip; from the repository, `make flink-jar`'s build/flink/
        jar = jar if jar.is_file() else APP_ROOT.parent / "build" / "flink" / jarfile
        config.set_string("pipeline.jars", jar.resolve().as_uri())
        config.set_string("python.executable", sys.executable)
        config.set_string("python.client.executable", sys.executable)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.add_python_file(str(stage_packages([APP_ROOT / "clickstream_job", Path(clickstream_anomaly.__file__).parent])))
    return env


def stage_packages(packages: list[Path]) -> Path:
    """A new directory holding a copy of each package (no caches), for ``add_python_file``: Flink puts an
    added directory itself on the Python workers' path, not its parent, so a package directory added as it
    is cannot be imported by its name (measured: ``ModuleNotFoundError: No module named 'clickstream_job'``
    in ``thread`` mode once the job's own ``PYTHONPATH`` and working directory were not the zip's)."""
    stage = Path(tempfile.mkdtemp(prefix="clickstream-python-"))
    atexit.register(shutil.rmtree, stage, ignore_errors=True)
    for package in packages:
        shutil.copytree(package, stage / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return stage


def main(properties: str | None = None) -> None:
    """Run the job: ``properties`` (or ``$APPLICATION_PROPERTIES``) is a local run's properties file."""
    local_file = properties or os.environ.get("APPLICATION_PROPERTIES")
    groups = property_groups(local_file or PROPERTIES)
    env = environment(groups, local=local_file is not None)
    records = env.add_source(kinesis_source(groups["ClicksStream"]), "clicks")
    streams = build(records, job_settings(groups.get("Job", {})))
    streams.windows.sink_to(kinesis_sink(groups["FeaturesStream"])).name("features")
    streams.detections.sink_to(kinesis_sink(groups["DetectionsStream"])).name("detections")
    log_rejects(streams.malformed, "malformed")
    log_rejects(streams.late, "late")
    env.execute("clickstream-anomaly")


if __name__ == "__main__":
    main()
