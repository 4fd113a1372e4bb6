"""Aggregator Lambda: Kinesis batches with a poison record, the scheduled tick, windows on the features stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.records import Click, Window, join_click_payloads
from tests.conftest import kinesis_event


def click_payload(minute: float, user: str, page: str = "/") -> bytes:
    t = datetime(2020, 7, 15, 10, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return Click(t, user, page).to_json().encode()


def features(aws) -> list[Window]:
    out: list[Window] = []
    ShardReader(aws["kinesis"], "features").drain(
        lambda ev, ctx: out.extend(
            Window.from_json(__import__("base64").b64decode(r["kinesis"]["data"])) for r in ev["Records"]
        )
    )
    return out


def test_batch_with_poison_record_reports_it_and_counts_the_rest(aws, lambda_context, capsys):
    from lambdas.aggregator import app

    payloads = [click_payload(1, "u1"), b"{not json", click_payload(2, "u2", "/b"), click_payload(25, "u3")]
    event = kinesis_event(payloads)
    response = app.handler(event, lambda_context)
    poison_seq = event["Records"][1]["kinesis"]["sequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": poison_seq}]}
    # Event clock 10:25: window 10:00 closed (10:20), with 2 clicks from 2 users on 2 pages.
    assert features(aws) == [Window(datetime(2020, 7, 15, 10, 0, tzinfo=UTC), 2, 2, 2, 0)]
    out = capsys.readouterr().out
    assert "poison record" in out and '"PoisonRecords":[1.0]' in out.replace(" ", "")
    # Lambda re-delivers from the poison record: the good records after it are not counted twice.
    retry = {"Records": event["Records"][1:]}
    assert app.handler(retry, lambda_context) == {"batchItemFailures": [{"itemIdentifier": poison_seq}]}
    assert '"DuplicateClicks":[2.0]' in capsys.readouterr().out.replace(" ", "")


def test_scheduled_tick_emits_empty_windows_during_an_outage(aws, lambda_context, monkeypatch):
    from clickstream_anomaly.aws import runtime
    from lambdas.aggregator import app

    clock = {"t": datetime(2020, 7, 15, 10, 12, 30, tzinfo=UTC).timestamp()}  # just after the clicks
    monkeypatch.setattr(runtime, "now", lambda: clock["t"])
    app.handler(kinesis_event([click_payload(1, "u1"), click_payload(12, "u2")]), lambda_context)
    assert features(aws) == []  # event clock 10:12: nothing closed yet
    clock["t"] += 40 * 60  # 40 minutes of wall time without a single click
    tick = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    app.handler(tick, lambda_context)
    got = features(aws)
    # Event clock 10:12 + 40 min = 10:52: windows up to 10:30 (ends 10:40, + 10 min lateness) are closed.
    assert [w.window_start.strftime("%H:%M") for w in got] == ["10:00", "10:10", "10:20", "10:30"]
    assert [w.clicks for w in got] == [1, 1, 0, 0]
    state = aws["s3"].get_object(Bucket="state-bucket", Key="aggregator/merge.state")["Body"].read()
    from clickstream_anomaly.streaming.merge import MergeState

    assert MergeState.from_bytes(state).outbox == []


def test_a_shard_that_has_not_reported_yet_holds_the_windows_open(aws, lambda_context):
    from lambdas.aggregator import app

    aws["kinesis"].create_stream(StreamName="clicks2", ShardCount=2)
    first = kinesis_event(
        [click_payload(m, f"a{m}") for m in (1, 15, 40)], stream="clicks2", shard="shardId-000000000000"
    )
    app.handler(first, lambda_context)
    assert features(aws) == []  # shard 1 of the stream (learnt with ListShards) has sent nothing yet
    second = kinesis_event([click_payload(m, f"b{m}") for m in (2, 41)], stream="clicks2", shard="shardId-000000000001")
    app.handler(second, lambda_context)
    got = features(aws)
    # Watermark min(10:40, 10:41) = 10:40: windows up to 10:20 (end 10:30 + 10 min lateness) close.
    assert [(w.window_start.strftime("%H:%M"), w.clicks) for w in got] == [("10:00", 2), ("10:10", 1), ("10:20", 0)]


def test_aggregated_records_and_a_bad_click_inside_one(aws, lambda_context, capsys):
    from lambdas.aggregator import app

    u1 = join_click_payloads([click_payload(1, "u1", "/a"), click_payload(2, "u1", "/b"), click_payload(3, "u1")])
    bad = join_click_payloads(
        [click_payload(4, "u2"), b'{"timestamp":"soon","user":"u2","page":"/"}', click_payload(5, "u2", "/c")]
    )
    event = kinesis_event([u1, bad, click_payload(25, "u3")])  # aggregated, aggregated with a bad click, single
    response = app.handler(event, lambda_context)
    bad_seq = event["Records"][1]["kinesis"]["sequenceNumber"]
    # The record with the bad click fails alone (Lambda retries it, then the failure destination gets it) ...
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_seq}]}
    out = capsys.readouterr().out
    assert "poison record" in out and "click 2 of 3: bad timestamp 'soon'" in out
    assert '"PoisonRecords":[1.0]' in out.replace(" ", "")
    # ... and its two good clicks are counted with the others: 10:00 has 5 clicks, 2 users, 4 pages
    # (residual 5 - 2 x 1: no history yet, R = 1).
    assert features(aws) == [Window(datetime(2020, 7, 15, 10, 0, tzinfo=UTC), 4, 2, 5, 3.0)]
    assert '"Clicks":[6.0]' in out.replace(" ", "")
    # The retries count nothing twice, and report the same bad click again.
    retry = {"Records": event["Records"][1:]}
    assert app.handler(retry, lambda_context) == {"batchItemFailures": [{"itemIdentifier": bad_seq}]}
    out = capsys.readouterr().out.replace(" ", "")
    assert '"DuplicateClicks":[3.0]' in out and '"Clicks":[0.0]' in out


def test_a_batch_where_every_record_fails_reports_them_all_and_keeps_the_good_clicks(aws, lambda_context, capsys):
    """Before: Powertools raised on a batch with no good record, the invocation failed, and the good
    clicks of a record with one bad click were never counted (every retry failed the same way)."""
    from lambdas.aggregator import app

    bad = join_click_payloads([click_payload(1, "u1", "/a"), b"{not json", click_payload(2, "u2", "/b")])
    event = kinesis_event([b"{not json", bad, b"x"])
    response = app.handler(event, lambda_context)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in event["Records"]]
    }
    out = capsys.readouterr().out.replace(" ", "")
    assert '"PoisonRecords":[3.0]' in out and '"Clicks":[2.0]' in out
    retry = {"Records": event["Records"]}  # Lambda retries the batch: nothing counted twice
    assert app.handler(retry, lambda_context) == response
    out = capsys.readouterr().out.replace(" ", "")
    assert '"DuplicateClicks":[2.0]' in out and '"Clicks":[0.0]' in out
    later = kinesis_event(
        [click_payload(25, "u3")], first_seq=49_600_000_000_000_000_000_000_000_000_000_000_000_000_000_010
    )
    assert app.handler(later, lambda_context) == {"batchItemFailures": []}
    # Event clock 10:25: window 10:00 closed, with the 2 good clicks of the record that failed.
    assert features(aws) == [Window(datetime(2020, 7, 15, 10, 0, tzinfo=UTC), 2, 2, 2, 0)]


def test_a_click_with_a_lone_surrogate_fails_alone(aws, lambda_context, capsys):
    """Before: the click was accepted and the state could not be saved (UnicodeEncodeError), so every
    invocation of the shard failed until the batch expired."""
    from lambdas.aggregator import app

    surrogate = b'{"timestamp":"2020-07-15T10:01:00Z","user":"u\\ud800x","page":"/"}'
    event = kinesis_event([click_payload(1, "u1"), surrogate, click_payload(25, "u3")])
    response = app.handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["kinesis"]["sequenceNumber"]}]}
    assert "not valid Unicode" in capsys.readouterr().out
    assert features(aws) == [Window(datetime(2020, 7, 15, 10, 0, tzinfo=UTC), 1, 1, 1, 0)]
