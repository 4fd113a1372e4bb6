"""Producer Lambda: S3 ObjectCreated (CSV / JSON Lines, gzip) -> clicks stream; bad lines to rejected/."""

from __future__ import annotations

import base64
import gzip
import json

from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.records import decode_click_record


def s3_event(bucket: str, key: str) -> dict:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-23T20:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "logs",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key, "size": 1, "eTag": "x", "sequencer": "0A"},
                },
            }
        ]
    }


def stream_clicks(aws) -> list[dict]:
    """The clicks on the stream (single or aggregated records), in stream order."""
    out: list[dict] = []
    ShardReader(aws["kinesis"], "clicks").drain(
        lambda ev, ctx: out.extend(
            c.to_dict() for r in ev["Records"] for c in decode_click_record(base64.b64decode(r["kinesis"]["data"]))[0]
        )
    )
    return out


def test_csv_object_with_bad_lines(aws, lambda_context, capsys):
    from lambdas.producer import app

    body = (
        "timestamp,user,page\n2020-07-15T10:00:00Z,u1,/a\nyesterday,u2,/b\n"
        "2020-07-15T10:00:02Z,u3,/c\n2020-07-15T10:00:03Z,,/d\n"
    )
    aws["s3"].put_object(Bucket="logs-bucket", Key="incoming/day 1.csv", Body=body.encode())
    out = app.handler(s3_event("logs-bucket", "incoming/day+1.csv"), lambda_context)
    (obj,) = out["objects"]
    assert (obj["sent"], obj["rejected"], obj["unsent"]) == (2, 2, 0)
    assert [c["user"] for c in stream_clicks(aws)] == ["u1", "u3"]
    rejected = aws["s3"].get_object(Bucket="logs-bucket", Key="rejected/incoming/day 1.csv.csv")["Body"].read()
    text = rejected.decode()
    assert ":3" not in text and ",3,bad timestamp" in text and ",5,empty user" in text
    emf = capsys.readouterr().out.replace(" ", "")
    assert '"RecordsSent":[2.0]' in emf and '"RecordsRejected":[2.0]' in emf


def test_gzip_json_lines_object(aws, lambda_context):
    from lambdas.producer import app

    lines = [json.dumps({"timestamp": f"2020-07-15T10:00:0{i}Z", "user": f"u{i}", "page": "/"}) for i in range(5)]
    aws["s3"].put_object(Bucket="logs-bucket", Key="incoming/a.jsonl.gz", Body=gzip.compress("\n".join(lines).encode()))
    out = app.handler(s3_event("logs-bucket", "incoming/a.jsonl.gz"), lambda_context)
    assert out["objects"][0]["sent"] == 5 and out["objects"][0]["rejected_key"] is None
    assert [c["user"] for c in stream_clicks(aws)] == [f"u{i}" for i in range(5)]


def test_a_users_clicks_share_one_record_unless_aggregation_is_off(aws, lambda_context, monkeypatch):
    from lambdas.producer import app

    lines = [json.dumps({"timestamp": f"2020-07-15T10:00:0{i}Z", "user": "u1", "page": f"/p{i}"}) for i in range(5)]
    aws["s3"].put_object(Bucket="logs-bucket", Key="incoming/b.jsonl", Body="\n".join(lines).encode())

    def records() -> list[dict]:
        out: list[dict] = []
        ShardReader(aws["kinesis"], "clicks").drain(lambda ev, ctx: out.extend(ev["Records"]))
        return out

    assert app.handler(s3_event("logs-bucket", "incoming/b.jsonl"), lambda_context)["objects"][0]["sent"] == 5
    (one,) = records()  # the default: one aggregated record, the clicks in order
    assert [c.page for c in decode_click_record(base64.b64decode(one["kinesis"]["data"]))[0]] == [
        f"/p{i}" for i in range(5)
    ]
    monkeypatch.setenv("CLICKS_AGGREGATE_BYTES", "0")
    app.handler(s3_event("logs-bucket", "incoming/b.jsonl"), lambda_context)
    assert len(records()) == 1 + 5  # the ShardReader starts again at TRIM_HORIZON: 1 old + 5 single records
