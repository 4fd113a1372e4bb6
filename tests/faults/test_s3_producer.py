"""S3 producer Lambda faults (issue #14, problem 1): one hostile line must not drop a whole file, and a
Lambda about to time out must leave what it did not send in ``unsent/``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.faults.conftest import click_lines
from tests.lambdas.test_producer import s3_event, stream_clicks


def put(aws, key: str, body: bytes) -> None:
    aws["s3"].put_object(Bucket="logs-bucket", Key=key, Body=body)


def keys(aws, prefix: str) -> list[str]:
    return [o["Key"] for o in aws["s3"].list_objects_v2(Bucket="logs-bucket", Prefix=prefix).get("Contents", [])]


def log_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return [r for r in out if isinstance(r, dict) and "level" in r]


def test_a_non_utf8_byte_rejects_its_line_and_sends_the_other_59(aws, lambda_context, capsys):
    """Before: 0 of the 59 good clicks sent, `sent 0, rejected 0, unsent 0`, an empty unsent/ object and
    only an INFO log line."""
    from lambdas.producer import app

    lines = [line.encode() for line in click_lines(60)]
    lines[31] = lines[31].replace(b"/p", b"/\xfe")  # data line 32 of 60 (file line 33)
    put(aws, "incoming/a.csv", b"timestamp,user,page\n" + b"\n".join(lines) + b"\n")
    out = app.handler(s3_event("logs-bucket", "incoming/a.csv"), lambda_context)
    (obj,) = out["objects"]
    assert (obj["sent"], obj["rejected"], obj["unsent"]) == (59, 1, 0)
    assert len(stream_clicks(aws)) == 59
    assert keys(aws, "unsent/") == []  # no empty unsent object
    rejected = aws["s3"].get_object(Bucket="logs-bucket", Key="rejected/incoming/a.csv.csv")["Body"].read().decode()
    assert ",33,not UTF-8" in rejected and "\\xfe" in rejected
    logs = log_lines(capsys.readouterr().out)
    warned = [r for r in logs if r["level"] in ("WARNING", "ERROR")]
    assert warned and "not UTF-8" in json.dumps(warned)


def test_a_two_mib_click_rejects_its_line_and_sends_the_others(aws, lambda_context):
    """Before: the 53 good clicks after a 2 MB click at line 9 of 61 were in none of the stream,
    rejected/ or unsent/."""
    from lambdas.producer import app

    lines = click_lines(61)
    lines[8] = lines[8].replace("/p", "/" + "x" * (2 * 1024 * 1024))
    put(aws, "incoming/b.csv", ("timestamp,user,page\n" + "\n".join(lines) + "\n").encode())
    out = app.handler(s3_event("logs-bucket", "incoming/b.csv"), lambda_context)
    (obj,) = out["objects"]
    assert (obj["sent"], obj["rejected"], obj["unsent"]) == (60, 1, 0)
    assert len(stream_clicks(aws)) == 60
    rejected = aws["s3"].get_object(Bucket="logs-bucket", Key="rejected/incoming/b.csv.csv")["Body"].read().decode()
    assert ",10,record of" in rejected and "1 MiB" in rejected


@dataclass
class ShrinkingContext:
    """A Lambda context whose remaining time drops by ``step_ms`` at every call (a slow send)."""

    remaining_ms: int
    step_ms: int
    function_name: str = "producer"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:producer"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= self.step_ms
        return self.remaining_ms


def test_a_lambda_about_to_time_out_stops_and_writes_the_rest_to_unsent(aws, capsys):
    """Before: nothing watched the deadline; a Lambda timeout killed the send with no unsent/ object."""
    from lambdas.producer import app

    lines = click_lines(3000, users=3000)
    put(aws, "incoming/c.csv", ("timestamp,user,page\n" + "\n".join(lines) + "\n").encode())
    context = ShrinkingContext(remaining_ms=33_000, step_ms=1_000)  # the margin is reached after a few calls
    out = app.handler(s3_event("logs-bucket", "incoming/c.csv"), context)
    (obj,) = out["objects"]
    assert obj["unsent"] > 0 and obj["sent"] + obj["unsent"] == 3000
    unsent = aws["s3"].get_object(Bucket="logs-bucket", Key="unsent/incoming/c.csv.jsonl")["Body"].read()
    sent = {json.dumps(c, sort_keys=True) for c in stream_clicks(aws)}
    rest = {json.dumps(json.loads(line), sort_keys=True) for line in unsent.decode().splitlines()}
    assert not sent & rest and len(sent | rest) == 3000
    errors = [r for r in log_lines(capsys.readouterr().out) if r["level"] == "ERROR"]
    assert errors and "timeout" in json.dumps(errors)
