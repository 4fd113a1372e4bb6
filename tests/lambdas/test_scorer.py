"""Scorer Lambda against moto's SageMaker runtime (canned endpoint answers), and its failure path."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from botocore.exceptions import ClientError

from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.records import Detection, Window
from clickstream_anomaly.sagemaker_formats import rcf_response_body
from clickstream_anomaly.streaming.scoring import History, band_score, with_retries
from tests.conftest import kinesis_event

T0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)


def window(i: int, clicks: int = 100) -> Window:
    return Window(T0 + timedelta(minutes=10 * i), 30, 40, clicks, clicks - 40)


def canned(*bodies: str) -> None:
    results = [
        {"Body": b, "ContentType": "application/json", "InvokedProductionVariant": "v1", "CustomAttributes": ""}
        for b in bodies
    ]
    resp = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": results, "region": "us-east-1"},
        timeout=5,
    )
    assert resp.status_code == 201


def detections(aws) -> list[Detection]:
    out: list[Detection] = []
    ShardReader(aws["kinesis"], "detections").drain(
        lambda ev, ctx: out.extend(
            Detection.from_mapping(json.loads(base64.b64decode(r["kinesis"]["data"]))) for r in ev["Records"]
        )
    )
    return out


def test_rcf_endpoint_scores_each_window(aws, lambda_context, monkeypatch):
    from lambdas.scorer import app

    monkeypatch.setenv("RCF_ENDPOINT_NAME", "rcf-endpoint")
    canned(rcf_response_body([0.7]), rcf_response_body([3.4]))
    out = app.handler(
        kinesis_event([window(0).to_json().encode(), window(1, 5).to_json().encode()], stream="features"),
        lambda_context,
    )
    assert out == {"batchItemFailures": []}
    got = detections(aws)
    assert [(d.detector, d.score) for d in got] == [("rcf-batch", 0.7), ("rcf-batch", 3.4)]
    assert got[1].window == window(1, 5)


def test_deepar_band_from_recent_history(aws, lambda_context, monkeypatch):
    from lambdas.scorer import app

    monkeypatch.setenv("DEEPAR_ENDPOINT_NAME", "deepar-endpoint")
    history = History()
    for i in range(-20, 0):
        history.add(window(i))
    aws["s3"].put_object(Bucket="state-bucket", Key="scorer/history.json", Body=history.to_bytes())
    band = {"predictions": [{"quantiles": {"0.01": [80.0], "0.5": [100.0], "0.99": [120.0]}}]}
    canned(json.dumps(band))
    app.handler(kinesis_event([window(0, clicks=0).to_json().encode()], stream="features"), lambda_context)
    (det,) = detections(aws)
    assert det.detector == "deepar" and (det.p01, det.p50, det.p99) == (80.0, 100.0, 120.0)
    assert det.is_anomaly and det.score == pytest.approx(band_score(0.0, 80.0, 120.0)) and det.score == 2.0
    saved = History.from_bytes(aws["s3"].get_object(Bucket="state-bucket", Key="scorer/history.json")["Body"].read())
    assert len(saved.clicks) == 21  # this window joined the context


def test_throttled_endpoint_fails_the_record_and_the_ones_after_it(aws, lambda_context, monkeypatch):
    from clickstream_anomaly.aws import runtime
    from clickstream_anomaly.streaming import scoring
    from lambdas.scorer import app

    monkeypatch.setenv("RCF_ENDPOINT_NAME", "rcf-endpoint")
    calls = {"n": 0}

    def throttled(endpoint, body, content_type):
        calls["n"] += 1
        if calls["n"] == 1:
            return rcf_response_body([1.0]).encode()
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "InvokeEndpoint")

    monkeypatch.setattr(runtime, "sagemaker_invoke", throttled)
    monkeypatch.setattr(scoring.time, "sleep", lambda s: None)
    event = kinesis_event([window(i).to_json().encode() for i in range(3)], stream="features")
    out = app.handler(event, lambda_context)
    seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert out == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs[1:]]}
    assert calls["n"] == 1 + 4  # one success, then 4 tries of the second window, none of the third
    assert len(detections(aws)) == 1


def test_with_retries_does_not_retry_model_errors():
    calls = {"n": 0}

    def model_error():
        calls["n"] += 1
        raise ClientError({"Error": {"Code": "ModelError", "Message": "bad input"}}, "InvokeEndpoint")

    with pytest.raises(ClientError):
        with_retries(model_error, sleep=lambda s: None)
    assert calls["n"] == 1


def test_rcf_requests_are_scaled_as_the_training_data_was(aws, monkeypatch):
    import boto3
    import numpy as np

    from clickstream_anomaly.aws import runtime
    from clickstream_anomaly.sagemaker_formats import parse_rcf_request
    from clickstream_anomaly.scaling import Scaling
    from clickstream_anomaly.streaming.scoring import rcf_detection

    scaling = Scaling(("urls", "users", "clicks", "residual"), (20.0, 30.0, 80.0, 0.0), (10.0, 20.0, 40.0, 5.0))
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="state-bucket", Key="channels/rcf/scaling.json", Body=scaling.to_json().encode()
    )
    monkeypatch.setenv("RCF_SCALING_URI", "s3://state-bucket/channels/rcf/scaling.json")
    clock = {"t": 1000.0}
    monkeypatch.setattr(runtime, "now", lambda: clock["t"])
    assert runtime.rcf_scaling() == scaling  # what the prepare step wrote
    newer = Scaling(scaling.columns, scaling.center, (1.0, 1.0, 1.0, 1.0))
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="state-bucket", Key="channels/rcf/scaling.json", Body=newer.to_json().encode()
    )
    assert runtime.rcf_scaling() == scaling  # cached: no S3 read per window
    clock["t"] += runtime.SCALING_TTL_SECONDS
    assert runtime.rcf_scaling() == newer  # a retraining is picked up after the TTL
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="state-bucket", Key="channels/rcf/scaling.json", Body=scaling.to_json().encode()
    )
    runtime.reset_clients()
    sent = []

    def invoke(endpoint, body, content_type):
        sent.append(parse_rcf_request(body))
        return rcf_response_body([1.5]).encode()

    det = rcf_detection(window(0), "rcf-endpoint", invoke, runtime.rcf_scaling())
    assert det.score == 1.5
    assert np.allclose(sent[0], [[(30 - 20) / 10, (40 - 30) / 20, (100 - 80) / 40, (60 - 0) / 5]])
    monkeypatch.setenv("RCF_SCALING_URI", "not-a-uri")
    with pytest.raises(ValueError, match="s3://bucket/key"):
        runtime.rcf_scaling()
