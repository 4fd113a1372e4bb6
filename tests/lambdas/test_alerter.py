"""Alerter Lambda: detections (Kinesis) and KDA output rows -> EMF metrics and SNS alerts (via SQS)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from clickstream_anomaly.records import Detection, Window
from tests.conftest import kinesis_event

T0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)


def det(i: int, score: float, low_users: bool = False) -> Detection:
    w = Window(T0 + timedelta(minutes=10 * i), 40, 1 if low_users else 50, 150, 149 if low_users else 100)
    attr = {
        "urls": 0.05,
        "users": score * 0.5 if low_users else 0.2,
        "clicks": 0.05,
        "residual": score * 0.4 if low_users else 0.2,
    }
    direction = {"urls": "HIGH", "users": "LOW" if low_users else "HIGH", "clicks": "HIGH", "residual": "HIGH"}
    return Detection(
        w, "rcf-streaming", score, 0.0, False, attribution=attr, direction=direction, strength=dict.fromkeys(attr, 0.1)
    )


def inbox(aws) -> list[dict]:
    msgs = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


def test_kinesis_detections_alert_once_with_metrics(aws, lambda_context, capsys):
    from lambdas.alerter import app

    dets = [det(0, 1.0), det(1, 4.0, True), det(2, 4.5, True), det(3, 1.0), det(4, 1.1)]
    event = kinesis_event([d.to_json().encode() for d in dets] + [b"garbage"], stream="detections")
    response = app.handler(event, lambda_context)
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][-1]["kinesis"]["sequenceNumber"]}]
    msgs = inbox(aws)
    assert [m["MessageAttributes"]["event"]["Value"] for m in msgs] == ["open", "resolved"]
    resolved = msgs[1]
    assert "users LOW, residual HIGH" in resolved["Message"]
    assert "2020-07-15 10:10 - 2020-07-15 10:30 UTC" in resolved["Message"]
    incident = json.loads(resolved["MessageAttributes"]["incident"]["Value"])
    assert incident["windows"] == 2 and incident["peak_score"] == 4.5
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    per_detection = [e for e in emf if "AnomalyScore" in e]
    assert len(per_detection) == 5 and all(e["detector"] == "rcf-streaming" for e in per_detection)
    assert [e["IsAnomaly"] for e in per_detection] == [[0.0], [1.0], [1.0], [0.0], [0.0]]
    assert per_detection[1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ClickstreamAnomaly"
    # The same batch again (a Lambda retry): no new message.
    app.handler(event, lambda_context)
    assert inbox(aws) == []


def test_kda_output_event(aws, lambda_context):
    from lambdas.alerter import app

    rows = []
    for i, (score, low) in enumerate([(0.9, False), (3.2, True), (0.8, False), (0.7, False)]):
        d = det(i, score, low)
        row = {k.upper(): v for k, v in d.window.to_dict().items() if k != "window_start"}
        row["window_start"] = d.window.to_dict()["window_start"]
        row["ANOMALY_SCORE"] = score
        row["ANOMALY_EXPLANATION"] = json.dumps(d.explanation())
        rows.append(row)
    event = {
        "invocationId": "inv-1",
        "applicationArn": "arn:aws:kinesisanalytics:us-east-1:1:application/a",
        "records": [
            {
                "recordId": f"r{i}",
                "lambdaDeliveryRecordMetadata": {"retryHint": 0},
                "data": base64.b64encode(json.dumps(r).encode()).decode(),
            }
            for i, r in enumerate(rows)
        ],
    }
    event["records"].append({"recordId": "bad", "data": base64.b64encode(b"[]").decode()})
    out = app.handler(event, lambda_context)
    assert out == {"records": [{"recordId": r, "result": "Ok"} for r in ("r0", "r1", "r2", "r3", "bad")]}
    msgs = inbox(aws)
    assert [m["MessageAttributes"]["event"]["Value"] for m in msgs] == ["open", "resolved"]
    assert "kda-sql" in msgs[0]["Subject"]


def test_kda_event_reports_delivery_failed_when_sns_fails(aws, lambda_context, monkeypatch):
    from clickstream_anomaly.aws import runtime
    from lambdas.alerter import app

    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:missing")
    row = det(0, 9.0, True)
    data = {**row.window.to_dict(), "ANOMALY_SCORE": 9.0, "ANOMALY_EXPLANATION": json.dumps(row.explanation())}
    event = {"records": [{"recordId": "r0", "data": base64.b64encode(json.dumps(data).encode()).decode()}]}
    runtime.reset_clients()
    out = app.handler(event, lambda_context)
    assert out == {"records": [{"recordId": "r0", "result": "DeliveryFailed"}]}
