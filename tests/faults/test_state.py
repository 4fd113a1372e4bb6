"""State faults (issue #14, problem 6): a corrupted or truncated state object gives a clear error naming the
object and the recovery command, a CorruptState metric, and is never reset silently; the documented
recovery (``clickstream-anomaly state check|reset``) brings the component back."""

from __future__ import annotations

import gzip
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
    "aggregator": ("aggregator/state.json.gz", lambda: kinesis_event([Click(T0, "u", "/").to_json().encode()])),
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
