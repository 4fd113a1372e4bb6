"""State faults (issue #14, problem 6): a corrupted or truncated state object gives a clear error naming the
object and the recovery command, a CorruptState metric, and is never reset silently; the documented
recovery (``clickstream-anomaly state check|reset``) brings the component back."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from clickstream_anomaly.cli import main
from clickstream_anomaly.records import Click, Detection, Window
from clickstream_anomaly.streaming.state import CorruptState
from tests.conftest import kinesis_event

T0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)
WINDOW = Window(T0, 3, 4, 10, 1.0)
# component -> (state key in the test environment, an event for its handler)
CASES = {
    "aggregator": (
        "aggregator/shards/shardId-000000000000.state",
        lambda: kinesis_event([Click(T0, "u", "/").to_json().encode()]),
    ),
    "detector": ("detector/state.bin", lambda: kinesis_event([WINDOW.to_json().encode()], stream="features")),
    "alerter": (
        "alerter/state.json",
        lambda: kinesis_event(
            [Detection(WINDOW, "rcf-streaming", 1.0, 0.0, False).to_json().encode()], stream="detections"
        ),
    ),
}


def handler(component: str):
    import importlib

    return importlib.import_module(f"lambdas.{component}.app").handler


def good_state(aws, component: str, lambda_context) -> bytes:
    key, event = CASES[component]
    handler(component)(event(), lambda_context)
    return aws["s3"].get_object(Bucket="state-bucket", Key=key)["Body"].read()


BROKEN = {
    "truncated": lambda raw: raw[: len(raw) // 2],
    "empty": lambda raw: b"",
    "foreign": lambda raw: gzip.compress(b"not a state"),
    "json fragment": lambda raw: b'{"stats": {',
}


@pytest.mark.parametrize("component", sorted(CASES))
@pytest.mark.parametrize("damage", sorted(BROKEN))
def test_a_broken_state_object_gives_a_clear_error_a_metric_and_is_left_as_is(
    aws, lambda_context, capsys, component, damage
):
    """Before: EOFError, 'not enough values to unpack', JSONDecodeError or KeyError, naming no object."""
    key, event = CASES[component]
    broken = BROKEN[damage](good_state(aws, component, lambda_context))
    aws["s3"].put_object(Bucket="state-bucket", Key=key, Body=broken)
    capsys.readouterr()
    with pytest.raises(CorruptState) as info:
        handler(component)(event(), lambda_context)
    message = str(info.value)
    assert f"s3://state-bucket/{key}" in message
    assert f"clickstream-anomaly state reset --component {component} --yes" in message
    out = capsys.readouterr().out
    assert '"CorruptState":[1.0]' in out.replace(" ", "") and '"corrupt state"' in out
    assert aws["s3"].get_object(Bucket="state-bucket", Key=key)["Body"].read() == broken  # never reset silently


@pytest.mark.parametrize("key", ["aggregator/merge.state", "aggregator/summaries/shardId-000000000000.json"])
def test_the_aggregators_merge_object_and_summaries_are_checked_too(aws, lambda_context, capsys, key):
    """The per-shard aggregator's other objects: a broken one stops it the same way, names the object, and
    ``state check|reset --component aggregator`` covers every object under its prefix."""
    _, event = CASES["aggregator"]
    good_state(aws, "aggregator", lambda_context)
    aws["s3"].put_object(Bucket="state-bucket", Key=key, Body=b'{"stats": {')
    tick = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    with pytest.raises(CorruptState, match=f"s3://state-bucket/{key}"):  # the tick reads every object
        handler("aggregator")(tick, lambda_context)
    args = ["--component", "aggregator", "--bucket", "state-bucket"]
    capsys.readouterr()
    assert main(["state", "check", *args]) == 1
    assert key in capsys.readouterr().err
    assert main(["state", "reset", *args, "--yes"]) == 0
    left = aws["s3"].list_objects_v2(Bucket="state-bucket", Prefix="aggregator/").get("Contents", [])
    assert left == []  # every object moved aside, to a backup prefix
    backups = aws["s3"].list_objects_v2(Bucket="state-bucket", Prefix="aggregator.reset-")["Contents"]
    assert any(o["Key"].endswith(key.split("/", 1)[1]) for o in backups)
    assert handler("aggregator")(event(), lambda_context) == {"batchItemFailures": []}  # runs again, from empty
    assert main(["state", "check", *args]) == 0


def test_state_check_and_reset_are_the_documented_recovery(aws, lambda_context, capsys):
    key, _ = CASES["detector"]
    raw = good_state(aws, "detector", lambda_context)
    args = ["--component", "detector", "--bucket", "state-bucket"]
    assert main(["state", "check", *args]) == 0
    assert "ok" in capsys.readouterr().out
    aws["s3"].put_object(Bucket="state-bucket", Key=key, Body=raw[:100])
    assert main(["state", "check", *args]) == 1
    assert "corrupt" in capsys.readouterr().err
    assert main(["state", "reset", *args]) == 2  # without --yes: nothing happens
    assert "--yes" in capsys.readouterr().err
    assert aws["s3"].get_object(Bucket="state-bucket", Key=key)["Body"].read() == raw[:100]
    assert main(["state", "reset", *args, "--yes"]) == 0
    listed = aws["s3"].list_objects_v2(Bucket="state-bucket", Prefix="detector/")["Contents"]
    (backup,) = [o["Key"] for o in listed if o["Key"] != key]
    assert backup.startswith(key + ".reset-") and key not in [o["Key"] for o in listed]
    assert aws["s3"].get_object(Bucket="state-bucket", Key=backup)["Body"].read() == raw[:100]
    # the component runs again, from an empty state
    later = Window(T0 + timedelta(minutes=10), 3, 4, 10, 1.0)
    response = handler("detector")(kinesis_event([later.to_json().encode()], stream="features"), lambda_context)
    assert response == {"batchItemFailures": []}
    assert main(["state", "check", *args]) == 0


def test_state_commands_name_a_missing_bucket_instead_of_a_traceback(capsys, monkeypatch):
    monkeypatch.delenv("STATE_BUCKET", raising=False)
    assert main(["state", "check", "--component", "alerter"]) == 2
    assert "--bucket" in capsys.readouterr().err


def _lake_day(s3, bucket: str, windows: list[Window]) -> None:
    """Window features as Firehose delivers them: GZIP, one JSON per line, under features/dt=<date>/."""
    by_day: dict[str, list[Window]] = {}
    for w in windows:
        by_day.setdefault(w.window_start.strftime("%Y-%m-%d"), []).append(w)
    for day, ws in by_day.items():
        body = gzip.compress("".join(w.to_json() + "\n" for w in ws).encode())
        s3.put_object(Bucket=bucket, Key=f"features/dt={day}/part-{day}.gz", Body=body)


def test_state_rebuild_learns_the_detector_again_from_the_lake(aws, lambda_context, capsys, monkeypatch):
    """Before: only reset existed, so a reset detector spent a day in warm-up (no verdict on any window)."""
    import numpy as np

    from clickstream_anomaly.baseline import TimeAwareBaseline
    from clickstream_anomaly.features import records_to_windows
    from clickstream_anomaly.streaming.detection import DetectorState

    s3 = aws["s3"]
    s3.create_bucket(Bucket="lake-bucket")
    rng = np.random.default_rng(3)
    start = datetime(2020, 7, 13, tzinfo=UTC)
    history = []
    for i in range(3 * 144):  # three days of 10-minute windows with a daily rhythm
        mean = 40 + 30 * np.sin(2 * np.pi * (i % 144) / 144)
        clicks = int(rng.poisson(mean))
        users = int(rng.binomial(clicks, 0.4))
        history.append(Window(start + timedelta(minutes=10 * i), 5, users, clicks, clicks - 2.5 * users))
    _lake_day(s3, "lake-bucket", [*history, history[5]])  # one window delivered twice
    args = ["state", "rebuild", "--bucket", "state-bucket", "--lake-bucket", "lake-bucket", "--days", "30"]
    now = history[-1].window_start + timedelta(minutes=30)
    monkeypatch.setattr("clickstream_anomaly.aws.state_admin.datetime", _FixedNow(now))
    assert main(args) == 0
    assert f"{len(history):,} windows learned" in capsys.readouterr().out
    state = DetectorState.from_bytes(s3.get_object(Bucket="state-bucket", Key="detector/state.bin")["Body"].read())
    assert state.outbox == [] and state.last_window == history[-1].window_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    # the rebuilt baseline is the one a batch run over the same history makes
    frame = records_to_windows(history)
    expected = TimeAwareBaseline().fit(frame)
    assert state.baseline is not None and state.baseline.to_bytes() == expected.to_bytes()
    # the detector Lambda continues with a verdict at once (no warm-up), after the last lake window
    nxt = Window(history[-1].window_start + timedelta(minutes=10), 5, 0, 0, 0.0)  # an outage at the peak hour
    handler("detector")(kinesis_event([nxt.to_json().encode()], stream="features"), lambda_context)
    state = DetectorState.from_bytes(s3.get_object(Bucket="state-bucket", Key="detector/state.bin")["Body"].read())
    assert state.last_window == nxt.window_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    kin = aws["kinesis"]
    shard = kin.list_shards(StreamName="detections")["Shards"][0]["ShardId"]
    it = kin.get_shard_iterator(StreamName="detections", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = kin.get_records(ShardIterator=it["ShardIterator"])["Records"]
    (sent,) = [Detection.from_mapping(json.loads(r["Data"])) for r in records]
    assert sent.detector == "baseline" and sent.window.window_start == nxt.window_start
    assert not sent.warmup and sent.is_anomaly  # judged at once: no day of warm-up
    # it never writes over an existing state: reset first
    assert main(args) == 2
    assert "reset it first" in capsys.readouterr().err


def test_state_rebuild_without_lake_windows_says_so(aws, capsys):
    aws["s3"].create_bucket(Bucket="lake-bucket")
    args = ["state", "rebuild", "--bucket", "state-bucket", "--lake-bucket", "lake-bucket", "--days", "2"]
    assert main(args) == 2
    assert "no window features under s3://lake-bucket/features/" in capsys.readouterr().err


class _FixedNow:
    """``datetime`` with a fixed ``now`` (the lake's day prefixes are counted back from it)."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self, tz=None):
        return self._now

    def __getattr__(self, name):
        return getattr(datetime, name)
