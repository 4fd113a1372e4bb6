"""End to end against a moto server on 127.0.0.1: producer (aggregating a user's clicks into shared records, as
``produce`` does by default, with injected partial failures, throttling and 5xx) -> clicks stream -> aggregator
-> features -> detector -> detections -> alerter -> SNS -> SQS.

Scenario: 3 days (2020-07-13..15) containing both blog incidents on 2020-07-15 (user miscount 10:10-11:20,
outage 17:30-17:40) and a broken page on 2020-07-14 (the second most clicked page gets no click from 13:00 to
14:30, which the site's totals hide): the per-page baseline names it. RCF runs with KDA's defaults (100
trees, sample size 256: 256 windows = 1.8 days of warm-up, over by 2020-07-14 18:40). The alerter uses
the online sigma threshold (k = 3).
"""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from clickstream_anomaly.aws.clients import kinesis_client
from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.clicks_csv import write_clicks
from clickstream_anomaly.features import PageCounts, windows_from_frame, windows_to_records
from clickstream_anomaly.generator import BLOG_INCIDENTS, Scenario, generate
from clickstream_anomaly.producer import (
    AGGREGATE_BYTES,
    Backoff,
    KinesisSender,
    entries_from_file,
)
from clickstream_anomaly.records import Window, decode_click_record

pytestmark = pytest.mark.slow


def fail_some_entries(client, rate: float, seed: int = 0) -> dict:
    """Make the service really reject a share of each PutRecords call's entries (they are not stored)
    and answer 500 to the first two calls (botocore's retry mode re-sends those)."""
    rng = random.Random(seed)
    stats = {"rejected": 0, "http500": 0}

    def drop(params, context, **kwargs):
        records = params["Records"]
        codes = [
            rng.choice(["ProvisionedThroughputExceededException", "InternalFailure"]) if rng.random() < rate else None
            for _ in records
        ]
        codes[0] = None  # the API needs at least one record in the call
        context["injected_codes"] = codes
        params["Records"] = [r for r, c in zip(records, codes, strict=True) if c is None]

    def restore(parsed, context, **kwargs):
        codes = context.get("injected_codes")
        if codes is None or "Records" not in parsed:
            return
        kept = iter(parsed["Records"])
        parsed["Records"] = [next(kept) if c is None else {"ErrorCode": c, "ErrorMessage": "injected"} for c in codes]
        parsed["FailedRecordCount"] = parsed.get("FailedRecordCount", 0) + sum(c is not None for c in codes)
        stats["rejected"] += sum(c is not None for c in codes)

    def http500(request, **kwargs):
        from botocore.awsrequest import AWSResponse

        if stats["http500"] >= 2:
            return None
        stats["http500"] += 1

        class Raw:
            def stream(self, **kw):
                yield b""

        resp = AWSResponse(request.url, 500, {"Content-Type": "application/x-amz-json-1.1"}, Raw())
        resp._content = json.dumps({"__type": "InternalFailure", "message": "injected"}).encode()
        return resp

    client.meta.events.register("before-parameter-build.kinesis.PutRecords", drop)
    client.meta.events.register("after-call.kinesis.PutRecords", restore)
    client.meta.events.register("before-send.kinesis.PutRecords", http500)
    return stats


BROKEN = (datetime(2020, 7, 14, 13, 0, tzinfo=UTC), datetime(2020, 7, 14, 14, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def scenario():
    clicks, _ = generate(Scenario(start="2020-07-13 00:00", days=3, volume=0.4, seed=0))
    page = clicks["page"].value_counts().index[1]
    broken = (clicks["page"] == page) & (clicks["timestamp"] >= BROKEN[0]) & (clicks["timestamp"] < BROKEN[1])
    out = clicks[~broken].reset_index(drop=True)
    out.attrs["broken_page"] = page
    return out


def decode(record: dict) -> bytes:
    return base64.b64decode(record["kinesis"]["data"])


def test_blog_scenario_end_to_end(moto_server, scenario, tmp_path, monkeypatch, lambda_context):
    from clickstream_anomaly.aws import runtime

    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "FEATURES_STREAM_NAME": "features",
        "STATE_BUCKET": "e2e-state",
        "WINDOW_FREQ": "10min",
        "ALLOWED_LATENESS": "10min",
        "STATE_KEY": "detector/state.bin",
        "DETECTIONS_STREAM_NAME": "detections",
        "DETECTORS": "baseline,baseline-pages,rcf-streaming",
        "RCF_NUM_TREES": "100",
        "RCF_SAMPLE_SIZE": "256",
        "RCF_TIME_DECAY": "100000",
        "RCF_SHINGLE_SIZE": "1",
        "RCF_WITH_DIRECTIONALITY": "true",
        "THRESHOLD_MODE": "sigma",
        "THRESHOLD": "2.6",
        "SIGMA_K": "3",
        "METRICS_NAMESPACE": "ClickstreamAnomaly",
        "POWERTOOLS_SERVICE_NAME": "clickstream-anomaly",
        "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamAnomaly",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    runtime.reset_clients()
    runtime._shards_of.cache_clear()
    kw = {"region_name": "us-east-1", "endpoint_url": moto_server}
    kin, s3, sns, sqs = (boto3.client(s, **kw) for s in ("kinesis", "s3", "sns", "sqs"))
    s3.create_bucket(Bucket="e2e-state")
    kin.create_stream(StreamName="clicks", ShardCount=2)
    kin.create_stream(StreamName="features", ShardCount=1)
    kin.create_stream(StreamName="detections", ShardCount=1)
    topic = sns.create_topic(Name="e2e-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="e2e-inbox")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    monkeypatch.setenv("TOPIC_ARN", topic)

    # 1. Producer: every click reaches the stream exactly once despite rejected entries and 5xx answers.
    path = tmp_path / "clicks.csv"
    write_clicks(scenario, path)
    producer = kinesis_client(region="us-east-1", endpoint_url=moto_server, retry_mode="standard")
    injected = fail_some_entries(producer, rate=0.1)
    # Held-back entries may be overtaken by up to 5 minutes of event time: half the aggregator's lateness.
    sender = KinesisSender(
        producer,
        "clicks",
        max_attempts=20,
        backoff=Backoff(base=0.001, cap=0.01),
        max_skew=300.0,
        aggregate_bytes=AGGREGATE_BYTES,
    )
    entries = list(entries_from_file(path))
    result = sender.send(entries)
    assert result.sent == len(entries) and injected["rejected"] == result.retried > 0
    assert injected["http500"] == 2

    # 2. Aggregator, fed shard by shard like an event source mapping (large batches: a fast replay).
    from lambdas.aggregator import app as aggregator

    clicks_reader = ShardReader(kin, "clicks", batch_size=2000)
    stored: list[bytes] = []
    n_records = 0

    def aggregate(event, context):
        nonlocal n_records
        n_records += len(event["Records"])
        stored.extend(c.to_json().encode() for r in event["Records"] for c in decode_click_record(decode(r))[0])
        return aggregator.handler(event, context)

    clicks_reader.drain(aggregate, lambda_context)
    assert sorted(stored) == sorted(e.data for e in entries)  # no click lost, none doubled
    assert n_records < len(entries) == result.sent  # the producer aggregated a user's clicks (the default)
    features_reader = ShardReader(kin, "features", batch_size=100)
    windows: list[Window] = []
    from lambdas.detector import app as detector

    def detect(event, context):
        windows.extend(Window.from_json(decode(r)) for r in event["Records"])
        return detector.handler(event, context)

    features_reader.drain(detect, lambda_context)
    pages = PageCounts()
    expected = windows_to_records(windows_from_frame(scenario, pages=pages), pages)
    assert len(windows) >= len(expected) - 3  # the last windows wait for the lateness to pass
    assert windows == expected[: len(windows)]  # identical to the batch features, outage window included
    assert [w.page_clicks for w in windows] == [w.page_clicks for w in expected[: len(windows)]]

    # 3. Alerter, then a forced retry of the same batches: no alert twice.
    from lambdas.alerter import app as alerter

    batches: list[dict] = []

    def alert(event, context):
        batches.append(event)
        return alerter.handler(event, context)

    ShardReader(kin, "detections", batch_size=100).drain(alert, lambda_context)
    for event in batches:  # Lambda retries every batch once more
        alerter.handler(event, lambda_context)

    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        messages += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )
    alerts = [
        json.loads(m["MessageAttributes"]["incident"]["Value"])
        | {"event": m["MessageAttributes"]["event"]["Value"], "text": m["Message"]}
        for m in messages
    ]
    keys = [a["key"] for a in alerts]
    assert len(keys) == len(set(keys)), "an alert was sent twice"

    def opened_during(inc):
        lo, hi = inc.start.to_pydatetime(), inc.end.to_pydatetime()
        return [
            a
            for a in alerts
            if a["event"] == "open"
            and lo <= datetime.fromisoformat(a["start"].replace("Z", "+00:00")).astimezone(UTC) < hi
        ]

    for a in sorted(alerts, key=lambda a: (a["start"], a["event"])):  # shown with pytest -s
        print(f"ALERT {a['event']:8s} {a['start']} {a['duration_minutes']:4.0f} min  {a['cause']}")
    miscount, outage = BLOG_INCIDENTS
    # each detector of the engine (baseline, baseline-pages, rcf-streaming) opens at most one alert per incident
    for inc in (miscount, outage):
        opened = [a["peak_detector"] for a in opened_during(inc)]
        assert len(opened) == len(set(opened))
    by = {a["peak_detector"]: a for a in opened_during(miscount)}
    assert "residual HIGH" in by["baseline"]["cause"] or "users LOW" in by["baseline"]["cause"]
    o = {a["peak_detector"]: a for a in opened_during(outage)}["baseline"]
    assert "clicks LOW: 0, expected" in o["cause"]
    assert "Cause:" in o["text"] and "UTC" in o["text"]
    page = scenario.attrs["broken_page"]
    broken = [
        a
        for a in alerts
        if a["event"] == "open" and BROKEN[0] <= datetime.fromisoformat(a["start"].replace("Z", "+00:00")) < BROKEN[1]
    ]
    by_page = [a for a in broken if a["peak_detector"] == "baseline-pages"]
    assert len(by_page) == 1 and by_page[0]["cause"].startswith(f"clicks LOW on page {page}: 0, expected ")
    opened = datetime.fromisoformat(by_page[0]["start"].replace("Z", "+00:00"))
    assert opened - BROKEN[0] <= timedelta(minutes=20)  # found within 20 minutes of the page breaking
    assert not [a for a in broken if a["peak_detector"] == "baseline"]  # the site's totals hide it
