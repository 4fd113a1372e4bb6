"""Detector faults (issue #14, problems 3 and 4): a window dated 2100 must not make every later window look
re-delivered; a NaN window fails alone, and every poison record is logged with its reason."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.kda import KdaRcfParameters
from clickstream_anomaly.records import Detection, Window
from clickstream_anomaly.streaming.detection import DetectorState, run_detector
from clickstream_anomaly.streaming.state import MemoryStore
from tests.conftest import kinesis_event

T0 = datetime(2020, 7, 15, 0, 0, tzinfo=UTC)
PARAMS = KdaRcfParameters(number_of_trees=10, sub_sample_size=32, time_decay=100, with_directionality=True)


def window(i: int, start: datetime = T0) -> Window:
    return Window(start + timedelta(minutes=10 * i), 5 + i % 3, 10 + i % 4, 40 + i % 7, 1.5)


def on_stream(aws) -> list[Detection]:
    out: list[Detection] = []
    ShardReader(aws["kinesis"], "detections").drain(
        lambda ev, ctx: out.extend(
            Detection.from_mapping(json.loads(base64.b64decode(r["kinesis"]["data"]))) for r in ev["Records"]
        )
    )
    return out


def test_a_window_dated_2100_does_not_make_the_later_windows_skipped():
    """Before: 6 detections instead of 51, silently (last_window was 2100, every later one looked older)."""
    store = MemoryStore()
    got: list[Detection] = []
    rejected: list = []
    stream = [window(i) for i in range(6)] + [Window(datetime(2100, 1, 1, tzinfo=UTC), 1, 1, 1, 0.0)]
    stream += [window(i) for i in range(6, 51)]
    for i in range(0, len(stream), 4):  # batches of 4: the 2100 window ends the second one
        got += run_detector(store, stream[i : i + 4], params=PARAMS, send=lambda d: None, reject=rejected.extend)
    assert [d.window for d in got] == [window(i) for i in range(51)]
    (r,) = rejected
    assert r.component == "detector" and r.record["window_start"].startswith("2100-01-01") and "ahead" in r.reason
    assert not DetectorState.from_bytes(store.data).rejected  # sent, then cleared


def test_a_window_far_ahead_of_the_wall_clock_is_rejected_even_as_the_first_one():
    store = MemoryStore()
    wall = T0.timestamp() + 3600
    from clickstream_anomaly.streaming.eventtime import EventTimePolicy

    policy = EventTimePolicy(max_future=900)
    got = run_detector(
        store, [window(0, T0 + timedelta(days=2))], params=PARAMS, send=lambda d: None, now=wall, policy=policy
    )
    got += run_detector(
        store, [window(i) for i in range(3)], params=PARAMS, send=lambda d: None, now=wall, policy=policy
    )
    assert [d.window for d in got] == [window(i) for i in range(3)]
    state = DetectorState.from_bytes(store.data)
    assert len(state.rejected) == 1 and "wall clock" in state.rejected[0]["reason"]  # kept until sent


def test_a_nan_window_fails_only_its_record_and_the_reason_is_logged(aws, lambda_context, capsys):
    """Before: the NaN reached the models and failed the whole batch, with no reason logged."""
    from lambdas.detector import app

    nan = b'{"window_start":"2020-07-15T00:10:00Z","urls":1,"users":1,"clicks":1,"residual":NaN}'
    payloads = [window(0).to_json().encode(), nan, window(2).to_json().encode()]
    event = kinesis_event(payloads, stream="features")
    response = app.handler(event, lambda_context)
    bad = event["Records"][1]["kinesis"]["sequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": bad}]}
    assert [d.window for d in on_stream(aws) if d.detector == "rcf-streaming"] == [window(0), window(2)]
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (poison,) = [entry for entry in logs if entry.get("message") == "poison record"]
    assert poison["sequence_number"] == bad and "residual=nan" in poison["reason"]


def test_an_invalid_base64_record_is_logged_with_its_reason(aws, lambda_context, capsys):
    """Before: the record failed with no log line at all."""
    from lambdas.detector import app

    event = kinesis_event([window(0).to_json().encode(), b"x"], stream="features")
    event["Records"][1]["kinesis"]["data"] = "abc"  # not base64 (bad padding)
    response = app.handler(event, lambda_context)
    assert len(response["batchItemFailures"]) == 1
    out = capsys.readouterr().out
    poison = [json.loads(line) for line in out.splitlines() if '"poison record"' in line]
    assert len(poison) == 1 and poison[0]["reason"].startswith("not base64")


def test_the_detector_lambda_sends_a_window_dated_2100_to_its_failure_queue(aws, lambda_context, capsys):
    from lambdas.detector import app

    queue = aws["sqs"].create_queue(QueueName="detector-failures")["QueueUrl"]
    os.environ["FAILURE_QUEUE_URL"] = queue
    try:
        future = Window(datetime(2100, 1, 1, tzinfo=UTC), 1, 1, 1, 0.0)
        payloads = [w.to_json().encode() for w in (window(0), future, window(1), window(2))]
        app.handler(kinesis_event(payloads, stream="features"), lambda_context)
    finally:
        del os.environ["FAILURE_QUEUE_URL"]
    assert [d.window for d in on_stream(aws) if d.detector == "rcf-streaming"] == [window(0), window(1), window(2)]
    (msg,) = aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msg["Body"])
    assert body["component"] == "detector" and body["record"]["window_start"].startswith("2100")
    out = capsys.readouterr().out
    assert '"EventTimeRejected":[1.0]' in out.replace(" ", "") and '"event time rejected"' in out
