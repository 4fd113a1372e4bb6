"""Alerter faults (issue #14, problem 3): a detection dated 2100 must not silence every later one, and an
``Infinity`` score must not make the sigma threshold NaN for good."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta

from clickstream_anomaly.records import Detection, Window
from clickstream_anomaly.streaming.alerting import AlertConfig, AlerterState, run_alerter
from clickstream_anomaly.streaming.state import MemoryStore
from tests.conftest import kinesis_event

T0 = datetime(2020, 7, 15, 9, 0, tzinfo=UTC)


def det(i: int, score: float, start: datetime = T0) -> Detection:
    return Detection(Window(start + timedelta(minutes=10 * i), 40, 30, 120, 90.0), "rcf-streaming", score, 0.0, False)


def test_a_detection_dated_2100_does_not_silence_the_later_ones():
    """Before: 0 of the 2 expected alerts (open, resolved): every later detection looked re-sent."""
    store = MemoryStore()
    published: list = []
    rejected: list = []
    batch = [det(0, 1.0), det(1, 1.0), det(0, 9.0, start=datetime(2100, 1, 1, tzinfo=UTC))]
    run_alerter(store, batch, AlertConfig(), publish=published.append, reject=rejected.extend)
    run_alerter(store, [det(2, 5.0), det(3, 1.0), det(4, 1.0)], AlertConfig(), publish=published.append)
    assert [a.event for a in published] == ["open", "resolved"]
    (r,) = rejected
    assert r.component == "alerter" and r.record["window_start"].startswith("2100") and "ahead" in r.reason


def test_an_infinity_score_does_not_poison_the_sigma_threshold():
    """Before: the running mean became inf, the threshold NaN, and no alert was ever sent again."""
    cfg = AlertConfig(mode="sigma", min_history=30)
    store = MemoryStore()
    published: list = []
    normal = [det(i, 1.0 + 0.1 * (i % 5)) for i in range(40)]
    run_alerter(store, [*normal[:20], det(20, math.inf), *normal[21:]], cfg, publish=published.append)
    judged, _ = run_alerter(store, [det(40, 9.0)], cfg, publish=published.append)
    assert math.isfinite(judged[0].threshold) and judged[0].is_anomaly
    assert [a.event for a in published] == ["open"]
    state = AlerterState.from_bytes(store.data)
    assert math.isfinite(state.stats["rcf-streaming"].mean)
    assert [d["reason"] for d in state.rejected] == ["score inf is not finite"]


def test_the_alerter_lambda_sends_an_infinity_score_to_its_failure_queue(aws, lambda_context, capsys):
    """``json.loads`` accepts ``Infinity``: the record parses, the alerter rejects it with its reason."""
    from lambdas.alerter import app

    queue = aws["sqs"].create_queue(QueueName="alerter-failures")["QueueUrl"]
    os.environ["FAILURE_QUEUE_URL"] = queue
    try:
        bad = det(1, 1.0).to_json().replace('"score":1.0', '"score":Infinity').encode()
        payloads = [det(0, 1.0).to_json().encode(), bad, det(2, 1.0).to_json().encode()]
        response = app.handler(kinesis_event(payloads, stream="detections"), lambda_context)
    finally:
        del os.environ["FAILURE_QUEUE_URL"]
    assert response == {"batchItemFailures": []}
    (msg,) = aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msg["Body"])
    assert body["component"] == "alerter" and "not finite" in body["reason"]
    out = capsys.readouterr().out
    assert '"EventTimeRejected":[1.0]' in out.replace(" ", "") and '"detection rejected"' in out


def test_an_invalid_base64_detection_is_logged_with_its_reason(aws, lambda_context, capsys):
    from lambdas.alerter import app

    event = kinesis_event([det(0, 1.0).to_json().encode(), b"x"], stream="detections")
    event["Records"][1]["kinesis"]["data"] = "abc"
    response = app.handler(event, lambda_context)
    assert len(response["batchItemFailures"]) == 1
    poison = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"poison record"' in line]
    assert len(poison) == 1 and poison[0]["reason"].startswith("not base64")


def test_hostile_detector_names_and_explanation_keys_are_escaped_in_the_alert():
    """Problem 12. Before: they went verbatim into the subject (line breaks, non-ASCII, over 100 characters:
    SNS refuses the publish and the outbox is blocked) and the body."""
    from clickstream_anomaly.streaming.alerting import build_alert

    name = "evil\r\nSubject: spoofed\x00 d\u00e9tecteur " + "x" * 120
    keys = {"clicks\nBcc: someone": 0.9, "users": 0.1}
    d = Detection(
        Window(T0, 40, 30, 120, 90.0),
        name,
        5.0,
        2.6,
        True,
        attribution=keys,
        direction=dict.fromkeys(keys, "HIGH"),
    )
    alert = build_alert([d], "open", AlertConfig())
    assert len(alert.subject) < 100 and all(" " <= c <= "~" for c in alert.subject)
    assert "\r" not in alert.text and "\x00" not in alert.text
    lines = alert.text.split("\n")
    assert not any(line.startswith(("Subject:", "Bcc:")) for line in lines)  # no injected line
    assert any(line.startswith("Detector: evil\\r\\nSubject") for line in lines)
    assert alert.key.startswith(name)  # the idempotency key keeps the name as it is
