"""Detector Lambda: features stream batches -> detections stream; cold start in the middle; poison windows."""

from __future__ import annotations

import base64
import importlib
import sys

import pytest

from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.features import windows_from_frame, windows_to_records
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.kda import KdaRcfParameters, KdaRcfStream
from clickstream_anomaly.records import BASELINE, FEATURE_COLUMNS, RCF_STREAMING, Detection
from tests.conftest import kinesis_event


def detections(aws, detector: str | None = RCF_STREAMING) -> list[Detection]:
    """The detections on the stream, of ``detector`` (None: all)."""
    import json

    out: list[Detection] = []
    ShardReader(aws["kinesis"], "detections").drain(
        lambda ev, ctx: out.extend(
            Detection.from_mapping(json.loads(base64.b64decode(r["kinesis"]["data"]))) for r in ev["Records"]
        )
    )
    return [d for d in out if detector is None or d.detector == detector]


def test_restart_mid_stream_gives_the_uninterrupted_scores(aws, lambda_context):
    clicks, _ = generate(Scenario(start="2020-07-14 00:00", days=1, volume=0.4, seed=5))
    windows = windows_to_records(windows_from_frame(clicks))[:100]
    params = KdaRcfParameters(number_of_trees=30, sub_sample_size=64, time_decay=1000, with_directionality=True)
    reference = KdaRcfStream(FEATURE_COLUMNS, params, random_state=0)
    expected = [reference.process_row([float(v) for v in w.features])[0] for w in windows]

    from lambdas.detector import app

    payloads = [w.to_json().encode() for w in windows]
    app.handler(kinesis_event(payloads[:60], stream="features"), lambda_context)
    # Cold start: a fresh module (and client cache); the forest comes back from S3.
    sys.modules.pop("lambdas.detector.app")
    app = importlib.import_module("lambdas.detector.app")
    app.handler(kinesis_event(payloads[60:], stream="features", first_seq=10**40), lambda_context)
    got = detections(aws)
    assert [d.score for d in got] == expected
    assert [d.window for d in got] == windows
    assert got[-1].attribution is not None and got[-1].direction is not None


def test_poison_window_fails_alone(aws, lambda_context):
    from lambdas.detector import app

    clicks, _ = generate(Scenario(start="2020-07-14 00:00", days=1, volume=0.4, seed=5))
    windows = windows_to_records(windows_from_frame(clicks))[:3]
    event = kinesis_event(
        [windows[0].to_json().encode(), b'{"window_start":"x"}', windows[1].to_json().encode()], stream="features"
    )
    response = app.handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["kinesis"]["sequenceNumber"]}]}
    assert [d.window for d in detections(aws)] == windows[:2]


def test_baseline_runs_beside_the_rcf_and_survives_a_cold_start(aws, lambda_context):
    from clickstream_anomaly.baseline import TimeAwareBaseline, detections_from_baseline
    from clickstream_anomaly.features import records_to_windows

    clicks, _ = generate(Scenario(start="2020-07-13 00:00", days=2, volume=0.4, seed=5))
    windows = windows_to_records(windows_from_frame(clicks))
    frame = records_to_windows(windows)
    reference = detections_from_baseline(frame, TimeAwareBaseline(window="10min").fit(None).process(frame))
    from lambdas.detector import app

    payloads = [w.to_json().encode() for w in windows]
    app.handler(kinesis_event(payloads[:150], stream="features"), lambda_context)
    sys.modules.pop("lambdas.detector.app")
    app = importlib.import_module("lambdas.detector.app")
    app.handler(kinesis_event(payloads[150:], stream="features"), lambda_context)
    got = detections(aws, BASELINE)
    assert [d.window for d in got] == windows
    assert [d.score for d in got] == [d.score for d in reference]
    assert all(d.warmup for d in got[:144]) and not any(d.warmup for d in got[144:])
    assert (
        got[-1].expected is not None and got[-1].low["clicks"] <= got[-1].expected["clicks"] <= got[-1].high["clicks"]
    )


def test_a_batch_of_poison_windows_only_is_reported_not_raised(aws, lambda_context):
    from lambdas.detector import app

    event = kinesis_event([b'{"window_start":"x"}', b"not json"], stream="features")
    response = app.handler(event, lambda_context)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in event["Records"]]
    }
    assert detections(aws) == []


def test_a_saved_state_takes_the_detector_rules_of_the_next_invocation(aws, lambda_context, monkeypatch):
    """Day 2 after a redeploy with stricter baseline rules: the saved state keeps what it learned on day 1
    and judges by the new rules, as the batch baseline does when its rule changes at the same window."""
    from clickstream_anomaly.aws.config import ConfigError, rules_from_env
    from clickstream_anomaly.baseline import TimeAwareBaseline, detections_from_baseline
    from clickstream_anomaly.baseline.rules import DetectorRules
    from clickstream_anomaly.features import records_to_windows

    clicks, _ = generate(Scenario(start="2020-07-13 00:00", days=2, volume=0.4, seed=5))
    windows = windows_to_records(windows_from_frame(clicks))
    frame = records_to_windows(windows)
    rules = {"point_threshold": 1.5, "pair_threshold": 1.2, "run_threshold": "inf"}
    model = TimeAwareBaseline(window="10min").fit(None)
    model.process(frame.iloc[:150])
    params = DetectorRules.parse({"baseline": rules}).baseline_params()
    reference = detections_from_baseline(frame.iloc[150:], model.with_rule(**params).process(frame.iloc[150:]))
    from lambdas.detector import app

    payloads = [w.to_json().encode() for w in windows]
    app.handler(kinesis_event(payloads[:150], stream="features"), lambda_context)
    import json

    monkeypatch.setenv("DETECTOR_RULES", json.dumps({"baseline": rules}))
    sys.modules.pop("lambdas.detector.app")
    app = importlib.import_module("lambdas.detector.app")
    app.handler(kinesis_event(payloads[150:], stream="features"), lambda_context)
    got = detections(aws, BASELINE)[150:]
    assert [(d.score, d.is_anomaly) for d in got] == [(d.score, d.is_anomaly) for d in reference]
    assert sum(d.is_anomaly for d in got) > 0  # the strict rules flag windows the defaults do not
    monkeypatch.setenv("DETECTOR_RULES", '{"baseline": {"huber": 2}}')
    with pytest.raises(ConfigError, match="DETECTOR_RULES: baseline has no rule huber"):
        rules_from_env()
