"""End to end against a moto server on 127.0.0.1: CloudFront real-time log records (what a real-time log
configuration writes, one request per record) -> clicks stream -> aggregator (``CLICKS_FORMAT=
cloudfront-realtime``, the salt from Secrets Manager) -> features -> baseline detector -> detections.

The blog scenario's 3 days (both incidents on 2020-07-15) become records in the default field order, each
visitor an IP + user agent; static assets, a declared crawler and 404s are mixed in (filtered, not
clicks) and a few malformed records (each fails alone and goes to the failure destination). The windows
must equal the batch features of the original clicks, and the baseline must flag both incidents.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import boto3
import pytest

from clickstream_anomaly.aws.clients import kinesis_client
from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.features import windows_from_frame, windows_to_records
from clickstream_anomaly.generator import BLOG_INCIDENTS, Scenario, generate
from clickstream_anomaly.producer import Backoff, Entry, KinesisSender
from clickstream_anomaly.records import Detection, Window

pytestmark = pytest.mark.slow
UA = "Mozilla/5.0%20(X11;%20Linux%20x86_64)"
BOT = "Mozilla/5.0%20(compatible;%20Googlebot/2.1)"


def record(ts: float, ip: str, uri: str, *, status: int = 200, agent: str = UA) -> bytes:
    """timestamp c-ip sc-status cs-method cs-uri-stem cs-user-agent cs-cookie, tab-separated."""
    return f"{ts:.3f}\t{ip}\t{status}\tGET\t{uri}\t{agent}\t-\n".encode()


def visitor_ips(users) -> dict[str, str]:
    """One IP per user id (the miscount incident's ``undefined`` user included): a one-to-one mapping,
    so the distinct visitors are the distinct users."""
    return {u: f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}" for n, u in enumerate(sorted(set(users)), 1)}


@pytest.fixture
def fresh_moto(moto_server):
    """The moto server, emptied before and after: its backends are per process, so the other end-to-end
    module's server (same worker) would otherwise see these streams."""
    import urllib.request

    def reset() -> None:
        urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()

    reset()
    yield moto_server
    reset()


@pytest.fixture(scope="module")
def scenario():
    clicks, _ = generate(Scenario(start="2020-07-13 00:00", days=3, volume=0.4, seed=0))
    return clicks


def realtime_entries(scenario, rng: random.Random) -> tuple[list[Entry], int, int]:
    """The scenario as real-time log entries, plus noise: ``(entries, filtered requests, malformed)``."""
    entries: list[Entry] = []
    filtered = malformed = 0
    ips = visitor_ips(scenario["user"])
    for ts, user, page in zip(scenario["timestamp"], scenario["user"], scenario["page"], strict=True):
        t, ip = ts.timestamp(), ips[user]
        entries.append(Entry(record(t, ip, page + "?utm_source=mail"), ip, t))
        r = rng.random()
        if r < 0.02:  # the page's script, a crawler, a broken link: requests, not clicks
            noise = rng.choice([record(t, ip, "/static/app.js"), record(t, "192.0.2.1", page, agent=BOT)])
            entries.append(Entry(noise if rng.random() < 0.7 else record(t, ip, "/gone", status=404), ip, t))
            filtered += 1
        elif r < 0.0203:  # about 8 in the 3 days
            entries.append(Entry(f"{t:.3f}\t{ip}\ttruncated\n".encode(), ip, t))
            malformed += 1
    return entries, filtered, malformed


def test_cloudfront_realtime_records_to_detections(fresh_moto, scenario, monkeypatch, lambda_context):
    moto_server = fresh_moto
    from clickstream_anomaly.aws import runtime

    kw = {"region_name": "us-east-1", "endpoint_url": moto_server}
    kin, s3, secrets = (boto3.client(s, **kw) for s in ("kinesis", "s3", "secretsmanager"))
    s3.create_bucket(Bucket="rt-state")
    for name, shards in (("clicks", 2), ("features", 1), ("detections", 1)):
        kin.create_stream(StreamName=name, ShardCount=shards)
    salt = secrets.create_secret(Name="clickstream/salt", SecretString="e2e salt")["ARN"]
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "FEATURES_STREAM_NAME": "features",
        "STATE_BUCKET": "rt-state",
        "WINDOW_FREQ": "10min",
        "ALLOWED_LATENESS": "10min",
        "STATE_KEY": "detector/state.bin",
        "DETECTIONS_STREAM_NAME": "detections",
        "DETECTORS": "baseline",
        "CLICKS_FORMAT": "cloudfront-realtime",
        "SOURCE_SETTINGS": '{"realtime_fields": ["timestamp", "c-ip", "sc-status", "cs-method", "cs-uri-stem", '
        '"cs-user-agent", "cs-cookie"], "sampling_rate": 100}',
        "USER_SALT_SECRET_ARN": salt,
        "POWERTOOLS_SERVICE_NAME": "clickstream-anomaly",
        "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamAnomaly",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    runtime.reset_clients()
    runtime._shards_of.cache_clear()

    # 1. CloudFront's side: one record per request, keyed by viewer (what lands on the stream).
    entries, n_filtered, n_malformed = realtime_entries(scenario, random.Random(1))
    assert n_filtered > 500 and n_malformed > 0
    producer = kinesis_client(region="us-east-1", endpoint_url=moto_server, retry_mode="standard")
    sent = KinesisSender(producer, "clicks", backoff=Backoff(base=0.001, cap=0.01), max_skew=300.0).send(entries)
    assert sent.sent == len(entries)

    # 2. Aggregator, fed like its event source mapping: malformed records fail alone, after retries
    # they go to the failure destination and the shard moves on.
    from lambdas.aggregator import app as aggregator

    clicks_reader = ShardReader(kin, "clicks", batch_size=500)
    clicks_reader.drain(aggregator.handler, lambda_context)
    assert len(clicks_reader.on_failure) == n_malformed
    windows: list[Window] = []
    from lambdas.detector import app as detector

    def detect(event, context):
        import base64

        windows.extend(Window.from_json(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"])
        return detector.handler(event, context)

    ShardReader(kin, "features", batch_size=100).drain(detect, lambda_context)
    expected = windows_to_records(windows_from_frame(scenario))
    assert len(windows) >= len(expected) - 3  # the last windows wait for the lateness to pass
    assert windows == expected[: len(windows)]  # the batch features of the original clicks, exactly

    # 3. Detections: the baseline flags both blog incidents.
    detections: list[Detection] = []

    def collect(event, context):
        import base64
        import json

        detections.extend(
            Detection.from_mapping(json.loads(base64.b64decode(r["kinesis"]["data"]))) for r in event["Records"]
        )

    ShardReader(kin, "detections", batch_size=500).drain(collect, lambda_context)
    assert len(detections) == len(windows)
    flagged = [d.window.window_start for d in detections if d.is_anomaly]
    for incident in BLOG_INCIDENTS:
        lo, hi = incident.start.to_pydatetime(), incident.end.to_pydatetime()
        assert any(lo <= t < hi for t in flagged), f"{incident} not flagged"
    outage = [d for d in detections if d.window.window_start == datetime(2020, 7, 15, 17, 30, tzinfo=UTC)]
    assert outage and outage[0].is_anomaly and outage[0].window.clicks == 0
