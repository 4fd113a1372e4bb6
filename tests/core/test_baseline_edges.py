"""The time-aware baseline across gaps in its history: a missing day, a missing week."""

from __future__ import annotations

from clickstream_anomaly.baseline import TimeAwareBaseline
from tests.core.test_baseline import DAY, series


def test_a_missing_day_is_no_anomaly_and_the_rhythm_carries_on():
    frame = series(days=6, seed=7)
    gappy = frame.drop(index=range(3 * DAY, 4 * DAY)).reset_index(drop=True)  # day 4 never arrived
    scores = TimeAwareBaseline().fit(None).process(gappy)
    assert len(scores.score) == 5 * DAY
    assert (scores.score[scores.warm] >= 1).sum() <= 2  # normal traffic: at most a stray window
    assert scores.warm[3 * DAY :].all()  # no new warm-up after the gap
    assert (scores.score[3 * DAY : 4 * DAY] < 1).all()  # the day after the gap is normal


def test_a_missing_week_is_bridged():
    frame = series(days=16, seed=8)
    gappy = frame.drop(index=range(7 * DAY, 14 * DAY)).reset_index(drop=True)
    scores = TimeAwareBaseline().fit(None).process(gappy)
    after = slice(7 * DAY, 9 * DAY)
    assert scores.warm[after].all() and (scores.score[after] < 1).mean() > 0.99
