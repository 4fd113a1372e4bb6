"""Aggregator Lambda with ``CLICKS_FORMAT=cloudfront-realtime``: CloudFront real-time log records on the
clicks stream, the salt from Secrets Manager, malformed records failing alone with their reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.records import Window
from clickstream_anomaly.sources import DEFAULT_REALTIME_FIELDS, SourceSettings
from clickstream_anomaly.sources.cloudfront_realtime import decode_records
from tests.conftest import kinesis_event

T0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC).timestamp()
SALT = "a shared secret salt"


def realtime(minute: float, ip: str, uri: str = "/", *, status: str = "200", cookie: str = "-") -> bytes:
    """One record in the default field order (timestamp c-ip sc-status cs-method cs-uri-stem cs-user-agent
    cs-cookie), as CloudFront writes it to the stream (a trailing newline)."""
    fields = [f"{T0 + minute * 60:.3f}", ip, status, "GET", uri, "Mozilla/5.0%20(X11)", cookie]
    return ("\t".join(fields) + "\n").encode()


def features(aws) -> list[Window]:
    out: list[Window] = []
    ShardReader(aws["kinesis"], "features").drain(
        lambda ev, ctx: out.extend(Window.from_json(base64.b64decode(r["kinesis"]["data"])) for r in ev["Records"])
    )
    return out


@pytest.fixture
def realtime_env(aws, monkeypatch):
    import boto3

    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="salt", SecretString=SALT)["ARN"]
    monkeypatch.setenv("CLICKS_FORMAT", "cloudfront-realtime")
    monkeypatch.setenv("USER_SALT_SECRET_ARN", arn)
    monkeypatch.setenv("SOURCE_SETTINGS", json.dumps({"realtime_fields": list(DEFAULT_REALTIME_FIELDS)}))
    return aws


def test_realtime_records_become_windows_and_a_malformed_one_fails_alone(realtime_env, lambda_context, capsys):
    from lambdas.aggregator import app

    payloads = [
        realtime(1, "192.0.2.1", "/a?utm=x"),
        b"1594807260.000\tonly three\tfields\n",  # malformed: wrong field count
        realtime(2, "192.0.2.2", "/b"),
        realtime(3, "192.0.2.2", "/app.js"),  # a static asset: filtered, not bad
        realtime(4, "192.0.2.3", "/missing", status="404"),  # not a click: filtered
        realtime(25, "192.0.2.4"),  # moves the event clock to 10:25
    ]
    event = kinesis_event(payloads)
    response = app.handler(event, lambda_context)
    bad_seq = event["Records"][1]["kinesis"]["sequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_seq}]}
    assert features(realtime_env) == [Window(datetime(2020, 7, 15, 10, 0, tzinfo=UTC), 2, 2, 2, 0)]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    poison = [line for line in lines if line.get("message") == "poison record"]
    assert len(poison) == 1 and poison[0]["sequence_number"] == bad_seq
    assert "wrong field count: expected 7" in poison[0]["reason"]
    emf = next(line for line in lines if "_aws" in line)
    assert emf["RequestsFiltered"] == [2.0] and emf["PoisonRecords"] == [1.0] and emf["Clicks"] == [3.0]
    from stacks.alerting import AGGREGATOR_METRICS  # what the dashboard graphs, all emitted

    assert set(AGGREGATOR_METRICS) <= set(emf)


def test_the_user_is_the_salted_hash_shared_with_the_cli(realtime_env, lambda_context):
    """The same record gives the same user id in the Lambda (salt from Secrets Manager) and in the core
    with that salt: what lets ``produce`` machines and the aggregator count a visitor once."""
    from clickstream_anomaly.aws import runtime

    decoded = runtime.decode_clicks(kinesis_event([realtime(1, "192.0.2.1")])["Records"])
    assert decoded is not None
    ((clicks, errors),) = decoded.values()
    expected = decode_records([realtime(1, "192.0.2.1")], SourceSettings(salt=SALT))["user"].tolist()
    other = decode_records([realtime(1, "192.0.2.1")], SourceSettings(salt="another salt"))["user"].tolist()
    assert not errors and [c.user for c in clicks] == expected != other
    assert "192.0.2.1" not in clicks[0].to_json()  # no raw IP leaves the reader


def test_json_clicks_from_the_s3_producer_share_the_stream(realtime_env, lambda_context):
    from clickstream_anomaly.records import Click
    from lambdas.aggregator import app

    own = Click(datetime(2020, 7, 15, 10, 5, tzinfo=UTC), "u-json", "/c").to_json().encode()
    response = app.handler(kinesis_event([realtime(1, "192.0.2.1"), own, realtime(25, "192.0.2.9")]), lambda_context)
    assert response == {"batchItemFailures": []}
    assert features(realtime_env) == [Window(datetime(2020, 7, 15, 10, 0, tzinfo=UTC), 2, 2, 2, 0)]


def test_without_a_salt_the_batch_fails_with_the_reason(realtime_env, lambda_context, monkeypatch):
    from clickstream_anomaly.aws.config import ConfigError
    from lambdas.aggregator import app

    monkeypatch.delenv("USER_SALT_SECRET_ARN")
    monkeypatch.delenv("CLICKSTREAM_USER_SALT", raising=False)
    with pytest.raises(ConfigError, match="USER_SALT_SECRET_ARN"):
        app.handler(kinesis_event([realtime(1, "192.0.2.1")]), lambda_context)


def test_settings_with_the_salt_in_the_environment_are_refused(monkeypatch):
    from clickstream_anomaly.aws.config import ConfigError, source_settings_from_env

    with pytest.raises(ConfigError, match="must not hold the salt"):
        source_settings_from_env("s", {"SOURCE_SETTINGS": '{"salt": "plain"}'})
    with pytest.raises(ConfigError, match="SOURCE_SETTINGS: realtime_fields"):
        source_settings_from_env("s", {"SOURCE_SETTINGS": '{"realtime_fields": ["nope"]}'})


def test_a_sampled_log_scales_clicks_not_users(realtime_env, lambda_context, monkeypatch):
    """At a 25 % sampling rate each logged click stands for four; distinct users and pages stay as seen."""
    from lambdas.aggregator import app

    fields = list(DEFAULT_REALTIME_FIELDS)
    monkeypatch.setenv("SOURCE_SETTINGS", json.dumps({"realtime_fields": fields, "sampling_rate": 25}))
    payloads = [realtime(1, "192.0.2.1", "/a"), realtime(2, "192.0.2.1", "/b"), realtime(3, "192.0.2.2", "/a")]
    app.handler(kinesis_event([*payloads, realtime(25, "192.0.2.4")]), lambda_context)
    # residual = 12 - 2 users * R, R = 1 with no history yet: the residual is in the scaled units too
    assert features(realtime_env) == [Window(datetime(2020, 7, 15, 10, 0, tzinfo=UTC), 2, 2, 12, 10.0)]


def test_the_sampling_rate_is_read_only_for_realtime_records():
    from clickstream_anomaly.aws.config import ConfigError, sampling_rate_from_env

    settings = json.dumps({"sampling_rate": 10})
    assert sampling_rate_from_env({"SOURCE_SETTINGS": settings}) == 100  # the project's clicks: not sampled
    assert sampling_rate_from_env({"CLICKS_FORMAT": "cloudfront-realtime", "SOURCE_SETTINGS": settings}) == 10
    with pytest.raises(ConfigError, match="sampling_rate"):
        sampling_rate_from_env({"CLICKS_FORMAT": "cloudfront-realtime", "SOURCE_SETTINGS": '{"sampling_rate": 0}'})
