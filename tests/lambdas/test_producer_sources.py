"""S3 producer Lambda with ``LANDING_FORMAT``: CloudFront, ALB and web-server logs (gzip or not) from the
landing bucket to the clicks stream, exactly the clicks the core's readers give with the shared salt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clickstream_anomaly.sources import SourceSettings, iter_clicks
from tests.lambdas.test_producer import s3_event, stream_clicks

DATA = Path(__file__).resolve().parents[1] / "core" / "data" / "sources"
SALT = "the salt every producer shares"


@pytest.fixture
def landing(aws, monkeypatch):
    import boto3

    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="salt", SecretString=SALT)["ARN"]
    monkeypatch.setenv("USER_SALT_SECRET_ARN", arn)
    monkeypatch.setenv("LANDING_FORMAT", "auto")
    monkeypatch.setenv("SOURCE_SETTINGS", json.dumps({"collapse_ids": True}))
    return aws


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("cloudfront-standard.log.gz", "cloudfront"),
        ("alb.log.gz", "alb"),
        ("access-combined.log", "combined"),
    ],
)
def test_access_logs_are_detected_and_sent(landing, lambda_context, name, fmt):
    from lambdas.producer import app

    landing["s3"].put_object(Bucket="logs-bucket", Key=f"incoming/{name}", Body=(DATA / name).read_bytes())
    out = app.handler(s3_event("logs-bucket", f"incoming/{name}"), lambda_context)
    (obj,) = out["objects"]
    settings = SourceSettings(salt=SALT, collapse_ids=True)
    expected = [c.to_dict() for c in iter_clicks(DATA / name, fmt, settings)]
    assert expected and obj["sent"] == len(expected) and obj["error"] is None
    assert sorted(stream_clicks(landing), key=json.dumps) == sorted(expected, key=json.dumps)
    assert not any("." in c["user"] for c in stream_clicks(landing))  # hashed ids, never an IP


def test_bad_lines_of_a_source_format_go_to_rejected(landing, lambda_context):
    from lambdas.producer import app

    name = "cloudfront-standard-bad.log"
    landing["s3"].put_object(Bucket="logs-bucket", Key=f"incoming/{name}", Body=(DATA / name).read_bytes())
    (obj,) = app.handler(s3_event("logs-bucket", f"incoming/{name}"), lambda_context)["objects"]
    assert obj["rejected"] > 0 and obj["rejected_key"] == f"rejected/incoming/{name}.csv"
    assert all(line.startswith(f"incoming/{name}:") for line in obj["bad_lines"])
    assert obj["sent"] == len(stream_clicks(landing)) > 0


def test_an_object_of_no_known_format_is_not_read_and_says_why(landing, lambda_context, capsys):
    from lambdas.producer import app

    landing["s3"].put_object(Bucket="logs-bucket", Key="incoming/notes.txt", Body=b"hello there\n")
    (obj,) = app.handler(s3_event("logs-bucket", "incoming/notes.txt"), lambda_context)["objects"]
    assert obj["sent"] == 0 and "cannot tell the format" in obj["error"] and "incoming/notes.txt" in obj["error"]
    assert stream_clicks(landing) == []
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"object not read"' in line]
    assert logged and logged[0]["level"] == "ERROR"
