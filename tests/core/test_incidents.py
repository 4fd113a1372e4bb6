"""Incident grouping edge cases, causes in words, ranking."""

from datetime import timedelta

import pytest

from clickstream_anomaly.incidents import group_incidents, incident_table
from clickstream_anomaly.records import Detection, Window, parse_timestamp

T0 = parse_timestamp("2020-07-15T10:00:00Z")


def det(i, score=3.0, anomalous=True, detector="rcf-streaming", **kw):
    win = Window(T0 + timedelta(minutes=10 * i), 10, 1, 40, 39)
    return Detection(win, detector, score, 2.0, anomalous, **kw)


def test_consecutive_windows_make_one_incident_and_gaps_split():
    dets = [det(0), det(1), det(2), det(4), det(8), det(9, anomalous=False)]
    incs = group_incidents(dets, gap_windows=1)
    spans = sorted((i.start, i.end) for i in incs)
    assert spans == [(T0, T0 + timedelta(minutes=50)), (T0 + timedelta(minutes=80), T0 + timedelta(minutes=90))]
    assert len(group_incidents(dets, gap_windows=0)) == 3
    assert len(group_incidents(dets, gap_windows=3)) == 1
    assert group_incidents([det(0, anomalous=False)]) == []
    with pytest.raises(ValueError):
        group_incidents(dets, gap_windows=-1)


def test_detectors_agreeing_and_severity_ranking():
    band = Detection(Window(T0, 10, 1, 40, 39), "deepar", 1.0, 0.0, True, p01=95, p50=120, p99=160)
    dets = [det(0, score=3.0), band, det(6, score=9.0)]
    incs = group_incidents(dets)
    # confirmed (two detectors agree) first, even though the single-detector one is more severe
    assert [i.detectors for i in incs] == [["deepar", "rcf-streaming"], ["rcf-streaming"]]
    assert [i.confirmed for i in incs] == [True, False]
    assert incs[0].severity == pytest.approx(4.0)  # max(3/2, 1+1) * 2 detectors
    assert incs[1].severity == pytest.approx(4.5)  # 9 / 2, one detector


def test_cause_in_words_from_attribution_and_band():
    expl = dict(
        attribution={"urls": 0.05, "users": 1.5, "clicks": 0.2, "residual": 1.0},
        direction={"urls": "HIGH", "users": "LOW", "clicks": "HIGH", "residual": "HIGH"},
    )
    inc = group_incidents([det(0, **expl), det(1, **expl)])[0]
    assert inc.cause == "users LOW, residual HIGH (rcf-streaming)"
    band = Detection(Window(T0, 0, 0, 0, 0), "deepar", 1.5, 0.0, True, p01=95.2, p50=120, p99=160.4)
    assert group_incidents([band])[0].cause == "clicks LOW: 0, expected 95–160 (deepar)"
    d = group_incidents([det(0)])[0].to_dict()
    assert d["start"] == "2020-07-15T10:00:00Z" and d["duration_minutes"] == 10.0
    assert "users LOW" in incident_table([inc])


def test_a_baseline_cause_names_clicks_first_when_they_are_beyond_their_band_too():
    # an outage at night: users carry most of the score, but 0 clicks against a band of 8-33 is what a
    # person reads first
    win = Window(T0, 0, 0, 0, 0.0)
    common = dict(
        direction={"urls": "LOW", "users": "LOW", "clicks": "LOW", "residual": "HIGH"},
        expected={"urls": 5.0, "users": 12.0, "clicks": 19.0, "residual": 0.0},
        low={"urls": 2.0, "users": 5.0, "clicks": 8.0, "residual": -9.0},
        high={"urls": 9.0, "users": 21.0, "clicks": 33.0, "residual": 9.0},
    )
    weights = {"urls": 0.3, "users": 1.4, "clicks": 0.6, "residual": 0.0}
    out_of_band = Detection(win, "baseline", 1.4, 1.0, True, attribution=weights, strength=weights, **common)
    cause = group_incidents([out_of_band])[0].cause
    assert cause.startswith("clicks LOW: 0, expected 8–33") and "users LOW" in cause
    # clicks inside their band are not promoted
    inside = Window(T0, 0, 0, 12, 0.0)
    in_band = Detection(inside, "baseline", 1.4, 1.0, True, attribution=weights, strength=weights, **common)
    assert group_incidents([in_band])[0].cause.startswith("users LOW: 0, expected 5–21")
