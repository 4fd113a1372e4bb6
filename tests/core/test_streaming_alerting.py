"""Alerter core: thresholds, incident open/resolved alerts with the cause, idempotency, EMF values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from clickstream_anomaly.records import Detection, Window
from clickstream_anomaly.streaming.alerting import (
    AlertConfig,
    AlerterState,
    RunningStats,
    metric_values,
    run_alerter,
    sns_attributes,
)
from clickstream_anomaly.streaming.state import MemoryStore

T0 = datetime(2020, 7, 15, 9, 0, tzinfo=UTC)


def det(i: int, score: float, users_low: bool = False, detector: str = "rcf-streaming") -> Detection:
    w = Window(T0 + timedelta(minutes=10 * i), 40, 1 if users_low else 30, 120, 119 if users_low else 90)
    attribution = {"urls": 0.1, "users": 0.2, "clicks": 0.1, "residual": 0.2}
    direction = {"urls": "HIGH", "users": "HIGH", "clicks": "HIGH", "residual": "HIGH"}
    if users_low:
        attribution = {"urls": 0.1, "users": score * 0.5, "clicks": 0.1, "residual": score * 0.4}
        direction = {"urls": "HIGH", "users": "LOW", "clicks": "HIGH", "residual": "HIGH"}
    return Detection(
        w,
        detector,
        score,
        0.0,
        False,
        attribution=attribution,
        direction=direction,
        strength=dict.fromkeys(attribution, 0.1),
    )


def series() -> list[Detection]:
    """Normal scores, an incident at windows 7-10 (users LOW), normal again."""
    out = [det(i, 1.0 + 0.05 * (i % 3)) for i in range(7)]
    out += [det(i, 4.0 + i * 0.1, users_low=True) for i in range(7, 11)]
    out += [det(i, 1.0) for i in range(11, 15)]
    return out


def test_static_threshold_opens_and_resolves_one_incident_with_its_cause():
    state = AlerterState()
    alerts = state.apply(series(), AlertConfig(mode="static", threshold=2.6))
    assert [a.event for a in alerts] == ["open", "resolved"]
    opened, resolved = alerts
    assert "users LOW, residual HIGH" in opened.text and "users LOW" in opened.subject
    assert "10:10" in opened.text and "ongoing" in opened.text
    assert "10:10 - 2020-07-15 10:50 UTC (40 min, 4 window(s))" in resolved.text
    assert resolved.attributes["windows"] == 4 and resolved.attributes["cause"].startswith("users LOW")
    payload = json.loads(sns_attributes(resolved)["incident"]["StringValue"])
    assert payload["start"] == "2020-07-15T10:10:00Z" and payload["end"] == "2020-07-15T10:50:00Z"
    assert len(opened.subject) <= 100


def test_gap_windows_join_and_split_incidents():
    dets = [
        det(0, 1.0),
        det(1, 5.0, True),
        det(2, 1.0),
        det(3, 5.0, True),
        det(4, 1.0),
        det(5, 1.0),
        det(6, 5.0, True),
        det(7, 1.0),
        det(8, 1.0),
    ]
    alerts = AlerterState().apply(dets, AlertConfig(gap_windows=1))
    assert [a.event for a in alerts] == ["open", "resolved", "open", "resolved"]
    assert alerts[1].attributes["windows"] == 2  # windows 1 and 3 joined across one normal window


def test_sigma_threshold_learns_from_normal_scores_only():
    cfg = AlertConfig(mode="sigma", sigma_k=3.0, min_history=5)
    state = AlerterState()
    judged = [state.judge(det(i, s), cfg) for i, s in enumerate([0.0, 1.0, 1.2, 0.8, 1.1, 0.9, 5.0, 1.0])]
    assert not any(d.is_anomaly for d in judged[:6])  # warm-up zero skipped, 5 scores needed first
    ref = RunningStats()
    for s in (1.0, 1.2, 0.8, 1.1, 0.9):
        ref.add(s)
    assert judged[6].is_anomaly and judged[6].threshold == pytest.approx(ref.mean + 3 * ref.std)
    assert state.stats["rcf-streaming"].n == 6  # the anomaly (5.0) did not widen the band
    with pytest.raises(ValueError):
        AlertConfig(mode="median")


def test_retried_batch_never_sends_an_alert_twice():
    store = MemoryStore()
    sent = []
    cfg = AlertConfig()
    batch = series()
    run_alerter(store, batch[:9], cfg, publish=sent.append)
    run_alerter(store, batch[:9], cfg, publish=sent.append)  # Lambda retried the same batch
    run_alerter(store, batch[5:], cfg, publish=sent.append)  # overlapping re-delivery
    assert [a.event for a in sent] == ["open", "resolved"]

    failures = {"n": 0}

    def flaky(alert):
        if failures["n"] == 0:
            failures["n"] += 1
            raise ConnectionError("SNS throttled")
        sent.append(alert)

    more = [det(i, 6.0, True) for i in range(20, 22)] + [det(i, 1.0) for i in range(22, 25)]
    with pytest.raises(ConnectionError):
        run_alerter(store, more, cfg, publish=flaky)
    run_alerter(store, more, cfg, publish=flaky)  # the retry publishes the pending alerts once
    assert [a.event for a in sent] == ["open", "resolved", "open", "resolved"]
    keys = [a.key for a in sent]
    assert len(set(keys)) == len(keys)


def test_metric_values_cover_score_verdict_and_features():
    d = det(0, 3.0, True)
    AlerterState().judge(d, AlertConfig(threshold=2.6))
    values = {name: v for name, v, _ in metric_values(d)}
    assert values["AnomalyScore"] == 3.0 and values["IsAnomaly"] == 1.0 and values["AnomalyThreshold"] == 2.6
    assert values["WindowUsers"] == 1 and values["WindowClicks"] == 120


def test_state_round_trip():
    state = AlerterState()
    state.apply(series()[:9], AlertConfig())
    again = AlerterState.from_bytes(state.to_bytes())
    assert again.to_bytes() == state.to_bytes()
    assert again.open_incident["rcf-streaming"]


def test_version_1_state_loads():
    import json

    state = AlerterState(sent_keys=["a"], last_window={"baseline": "2020-07-14T00:00:00Z"})
    v1 = json.dumps(
        {
            "version": 1,
            "stats": {},
            "last_window": state.last_window,
            "open_incident": {},
            "outbox": [],
            "sent_keys": ["a"],
        }
    ).encode()
    assert AlerterState.from_bytes(v1).sent_keys == ["a"]
    assert (
        state.to_bytes().startswith(b"CSASTATE")
        and AlerterState.from_bytes(state.to_bytes()).last_window == state.last_window
    )
