"""Shared fixtures: fake AWS credentials for every test, and a moto server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import dataclass

import pytest

REGION = "us-east-1"


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is now (pytest swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture(scope="module")
def day_clicks():
    """One generated day with both blog incidents (user miscount 10:10-11:20, outage 17:30-17:40): the
    clicks the streaming-aggregator tests drive through every engine."""
    from clickstream_anomaly.generator import Scenario, generate

    clicks, _ = generate(Scenario(start="2020-07-15 00:00", days=1, volume=0.5, seed=7))
    return clicks


def engine_reference_detections(path, **read: object) -> list:
    """The batch detections the streaming engines' default detectors (baseline, baseline-pages) must give
    on the clicks of ``path`` (``read``: compute_windows's options), in the engines' order: per window, the
    baseline's then the per-page one's."""
    from clickstream_anomaly.baseline import TimeAwareBaseline, detections_from_baseline
    from clickstream_anomaly.detectors import PageBaselineDetector
    from clickstream_anomaly.features import PageCounts, compute_windows

    pages = PageCounts()
    windows = compute_windows(path, pages=pages, **read)  # type: ignore[arg-type]
    site = detections_from_baseline(windows, TimeAwareBaseline(window="10min").fit(None).process(windows))
    per_page = PageBaselineDetector(pages=pages).detect(windows)
    return [d for pair in zip(site, per_page, strict=True) for d in pair]


@pytest.fixture(autouse=True)
def lambda_logs_to_current_stdout():
    """Powertools loggers share one handler per service, created at the first import: point it at the
    current stdout, so a test reading its log lines (capsys) sees them whichever test imported first."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    for logger in list(logging.Logger.manager.loggerDict.values()):
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler.formatter, LambdaPowertoolsFormatter) and isinstance(handler, logging.StreamHandler):
                handler.stream = _CurrentStdout()  # not setStream: it flushes the old, maybe closed, stream
    yield


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real account: fake keys, a fixed region, no profile or endpoint from the host."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_server():
    """A moto server on 127.0.0.1 and a free port; yields its URL and stops it after the module."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass
class LambdaContext:
    """The fake Lambda context of Powertools' test pattern."""

    function_name: str = "test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "da658bd3-2d6f-4e7b-8ec2-937234644fdc"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


def kinesis_event(
    payloads: list[bytes],
    *,
    stream: str = "clicks",
    shard: str = "shardId-000000000000",
    first_seq: int = 49_600_000_000_000_000_000_000_000_000_000_000_000_000_000_000,
    keys: list[str] | None = None,
) -> dict:
    """A Lambda Kinesis event with ``payloads`` as consecutive records of one shard."""
    from clickstream_anomaly.aws.kinesis_reader import kinesis_event_record

    recs = [
        {"PartitionKey": (keys[i] if keys else f"k{i}"), "SequenceNumber": str(first_seq + i), "Data": p}
        for i, p in enumerate(payloads)
    ]
    return {"Records": [kinesis_event_record(r, stream=stream, shard_id=shard) for r in recs]}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """moto in-process with the pipeline's resources and the Lambda environment the CDK app sets."""
    import boto3
    from moto import mock_aws

    from clickstream_anomaly.aws import runtime

    with mock_aws():
        runtime.reset_clients()
        runtime._shards_of.cache_clear()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="state-bucket")
        s3.create_bucket(Bucket="logs-bucket")
        kin = boto3.client("kinesis", region_name=REGION)
        for name in ("clicks", "features", "detections"):
            kin.create_stream(StreamName=name, ShardCount=1)
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "false"})
        env = {
            "CLICKS_STREAM_NAME": "clicks",
            "REJECTED_PREFIX": "rejected/",
            "FEATURES_STREAM_NAME": "features",
            "STATE_BUCKET": "state-bucket",
            "WINDOW_FREQ": "10min",
            "ALLOWED_LATENESS": "10min",
            "STATE_KEY": "detector/state.bin",
            "DETECTIONS_STREAM_NAME": "detections",
            "DETECTORS": "baseline,rcf-streaming",
            "RCF_NUM_TREES": "30",
            "RCF_SAMPLE_SIZE": "64",
            "RCF_TIME_DECAY": "1000",
            "RCF_SHINGLE_SIZE": "1",
            "RCF_WITH_DIRECTIONALITY": "true",
            "TOPIC_ARN": topic,
            "THRESHOLD_MODE": "static",
            "THRESHOLD": "2.6",
            "SIGMA_K": "3",
            "METRICS_NAMESPACE": "ClickstreamAnomaly",
            "POWERTOOLS_SERVICE_NAME": "clickstream-anomaly",
            "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamAnomaly",
            "LOG_LEVEL": "INFO",
            "RCF_ENDPOINT_NAME": "",
            "DEEPAR_ENDPOINT_NAME": "",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield {"s3": s3, "kinesis": kin, "sns": sns, "sqs": sqs, "topic": topic, "queue": queue}
        runtime.reset_clients()
