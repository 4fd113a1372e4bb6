"""Aggregator faults (issue #14, problem 3): one mis-dated click must not move the watermark, flood the
features stream with empty windows, drop the on-time clicks as late, or time the Lambda out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from clickstream_anomaly.records import Click
from clickstream_anomaly.streaming.aggregation import AggregatorState, apply_batch, run_aggregator
from clickstream_anomaly.streaming.state import MemoryStore
from tests.conftest import kinesis_event

T0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)
WALL = 1_600_000_000.0  # a wall clock in 2020-09, after every event time of these tests


def on_time(first_seq: int, n: int, start: datetime, shard: str = "s0", user: str = "u") -> list:
    return [
        (shard, str(first_seq + i), Click(start + timedelta(seconds=20 * i), f"{user}{i % 5}", "/")) for i in range(n)
    ]


def emitted(state: AggregatorState) -> list:
    out = state.outbox_windows()
    state.acknowledge(out)
    return out


def rejected_clicks(state: AggregatorState) -> list[dict]:
    return list(getattr(state, "rejected", []))


def test_a_click_dated_one_day_ahead_is_rejected_and_the_on_time_clicks_still_count():
    """Before: the watermark jumped a day, 143 empty windows came out at once and the 55 on-time clicks
    after it were dropped as late."""
    state = AggregatorState()
    apply_batch(state, on_time(1, 30, T0), now=WALL)
    first = emitted(state)
    apply_batch(state, [("s0", "100", Click(T0 + timedelta(days=1), "mallory", "/"))], now=WALL + 1)
    apply_batch(state, on_time(101, 55, T0 + timedelta(minutes=10)), now=WALL + 2)
    out = emitted(state)
    assert state.late_dropped == 0
    assert len(out) <= 3, f"{len(out)} windows emitted at once"
    assert all(w.window_start < T0 + timedelta(hours=1) for w in out)
    assert sum(p.clicks for p in state.open.values()) + sum(w.clicks for w in first + out) == 30 + 55
    (rej,) = rejected_clicks(state)
    assert rej["record"]["user"] == "mallory" and "ahead" in rej["reason"]


def test_on_two_shards_an_idle_shard_does_not_let_one_outlier_through():
    """Before: once the other shard had been idle for 60 s (a quiet night), the outlier set the watermark."""
    state = AggregatorState()
    shards = ("s0", "s1")
    apply_batch(state, on_time(1, 10, T0, "s0") + on_time(1, 10, T0, "s1", user="v"), now=WALL, shards=shards)
    emitted(state)
    # s1 goes quiet; 2 minutes of wall time later s0 carries one click dated a day ahead, then on-time ones.
    apply_batch(state, [("s0", "50", Click(T0 + timedelta(days=1), "mallory", "/"))], now=WALL + 120, shards=shards)
    apply_batch(state, on_time(51, 20, T0 + timedelta(minutes=4), "s0"), now=WALL + 121, shards=shards)
    out = emitted(state)
    assert state.late_dropped == 0 and len(out) <= 3
    assert [r["record"]["user"] for r in rejected_clicks(state)] == ["mallory"]


def test_a_click_dated_2100_is_rejected_in_milliseconds():
    """Before: the aggregator was still building empty windows after 90 s (its Lambda timeout is 120 s)."""
    state = AggregatorState()
    apply_batch(state, on_time(1, 5, T0), now=WALL)
    t = time.perf_counter()
    apply_batch(state, [("s0", "9", Click(datetime(2100, 1, 1, tzinfo=UTC), "mallory", "/"))], now=WALL + 1)
    state.close(now=WALL + 61)
    assert time.perf_counter() - t < 2.0
    assert len(state.outbox) < 10
    assert rejected_clicks(state)[0]["record"]["timestamp"].startswith("2100-01-01")


def test_a_first_click_dated_1970_does_not_fill_the_outbox_with_millions_of_windows():
    state = AggregatorState()
    apply_batch(state, [("s0", "1", Click(datetime(1970, 1, 1, tzinfo=UTC), "mallory", "/"))], now=WALL)
    apply_batch(state, on_time(2, 60, T0), now=WALL + 1)
    state.close(now=WALL + 3600)
    assert len(state.outbox) < 20
    assert "before" in rejected_clicks(state)[0]["reason"]


def test_rejected_clicks_go_to_the_failure_queue_with_their_reason_and_are_counted(aws, lambda_context, capsys):
    from lambdas.aggregator import app

    sqs = aws["sqs"]
    queue = sqs.create_queue(QueueName="aggregator-failures")["QueueUrl"]
    import os

    os.environ["FAILURE_QUEUE_URL"] = queue
    try:
        good = [Click(T0 + timedelta(seconds=i), f"u{i}", "/").to_json().encode() for i in range(5)]
        bad = Click(datetime(2100, 1, 1, tzinfo=UTC), "mallory", "/").to_json().encode()
        response = app.handler(kinesis_event([*good, bad, *good[:1]]), lambda_context)
    finally:
        del os.environ["FAILURE_QUEUE_URL"]
    assert response == {"batchItemFailures": []}
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    assert len(bodies) == 1 and bodies[0]["component"] == "aggregator"
    assert bodies[0]["record"]["user"] == "mallory" and "2100" in bodies[0]["reason"]
    assert bodies[0]["source"]["shard"].startswith("shardId-")
    out = capsys.readouterr().out
    assert '"EventTimeRejected":[1.0]' in out.replace(" ", "")
    assert "event time rejected" in out
    # the state kept nothing of it: the next run sends nothing again
    from clickstream_anomaly.streaming.shard_state import ShardState

    key = "aggregator/shards/shardId-000000000000.state"
    state = ShardState.from_bytes(aws["s3"].get_object(Bucket="state-bucket", Key=key)["Body"].read())
    assert not getattr(state, "rejected", []) and max(state.shard_high.values()) < int(
        datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1e9
    )


def test_run_aggregator_keeps_rejections_until_they_are_sent():
    store = MemoryStore()
    sent: list = []

    def broken(items):
        raise ConnectionError("sqs down")

    recs = [*on_time(1, 3, T0), ("s0", "9", Click(datetime(2100, 1, 1, tzinfo=UTC), "mallory", "/"))]
    with pytest.raises(ConnectionError):
        run_aggregator(store, recs, send=sent.extend, now=WALL, reject=broken)
    assert len(AggregatorState.from_bytes(store.data).rejected) == 1  # kept, not lost
    got: list = []
    run_aggregator(store, [], send=sent.extend, now=WALL + 60, reject=got.extend)
    assert [r.record["user"] for r in got] == ["mallory"]
    assert not AggregatorState.from_bytes(store.data).rejected


def test_an_invalid_base64_click_record_is_logged_with_its_reason(aws, lambda_context, capsys):
    """Problem 4. Before: the record failed with no log line at all."""
    from lambdas.aggregator import app

    event = kinesis_event([Click(T0, "u", "/").to_json().encode(), b"x"])
    event["Records"][1]["kinesis"]["data"] = "abc"  # not base64 (bad padding)
    response = app.handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["kinesis"]["sequenceNumber"]}]}
    poison = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"poison record"' in line]
    assert len(poison) == 1 and poison[0]["reason"].startswith("not base64")
