"""Scorer faults (issue #14, problem 3): a window dated 2100 is not scored into DeepAR's history nor sent on
as a detection dated 2100; it goes to the failure queue with its reason."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from clickstream_anomaly.records import Window
from tests.conftest import kinesis_event
from tests.lambdas.test_scorer import canned, detections, window


def test_a_window_dated_2100_goes_to_the_failure_queue_unscored(aws, lambda_context, monkeypatch, capsys):
    from clickstream_anomaly.sagemaker_formats import rcf_response_body
    from lambdas.scorer import app

    monkeypatch.setenv("RCF_ENDPOINT_NAME", "rcf-endpoint")
    canned(rcf_response_body([0.7]), rcf_response_body([0.8]))
    queue = aws["sqs"].create_queue(QueueName="scorer-failures")["QueueUrl"]
    os.environ["FAILURE_QUEUE_URL"] = queue
    try:
        future = Window(datetime(2100, 1, 1, tzinfo=UTC), 1, 1, 1, 0.0)
        payloads = [w.to_json().encode() for w in (window(0), future, window(1))]
        out = app.handler(kinesis_event(payloads, stream="features"), lambda_context)
    finally:
        del os.environ["FAILURE_QUEUE_URL"]
    assert out == {"batchItemFailures": []}
    assert [d.window for d in detections(aws)] == [window(0), window(1)]  # the canned answers, in order
    (msg,) = aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msg["Body"])
    assert body["component"] == "scorer" and "wall clock" in body["reason"]
    assert '"EventTimeRejected":[1.0]' in capsys.readouterr().out.replace(" ", "")
