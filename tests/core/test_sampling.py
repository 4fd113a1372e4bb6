"""Sampled sources (CloudFront real-time logs below 100 %): ``clicks`` scaled in one place
(:func:`features.scale_clicks`), the same in the batch and the streaming windows; users and pages not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.features import compute_windows, scale_clicks, windows_from_frame, windows_to_records
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.sources import SourceSettings
from tests.core.test_streaming_aggregation import as_clicks, final_windows, run_stream


@pytest.fixture(scope="module")
def day_clicks() -> pd.DataFrame:
    clicks, _ = generate(Scenario(start="2020-07-15 00:00", days=1, volume=0.5, seed=7))
    return clicks


def test_scale_clicks_rounds_half_up_exactly():
    assert scale_clicks(7, 100) == 7
    assert scale_clicks(1, 10) == 10
    assert scale_clicks(3, 40) == 8  # 7.5 -> 8
    assert scale_clicks(1, 3) == 33  # 33.3
    assert scale_clicks(2, 3) == 67  # 66.7
    big = np.array([0, 1, 2**40], dtype=np.int64)
    assert scale_clicks(big, 25).tolist() == [0, 4, 2**42]
    for bad in (0, 101):
        with pytest.raises(ValueError, match="sampling_rate"):
            scale_clicks(1, bad)


def test_streaming_and_batch_scale_alike(day_clicks):
    """Bit-identical windows at 25 %: the same scaled clicks, hence the same residuals."""
    expected = windows_to_records(windows_from_frame(day_clicks, sampling_rate=25))
    plain = windows_to_records(windows_from_frame(day_clicks))
    from clickstream_anomaly.streaming.aggregation import AggregatorState

    state, emitted = run_stream(as_clicks(day_clicks), 2, state=AggregatorState(sampling_rate=25))
    assert final_windows(state, emitted, expected[-1].window_start) == expected
    assert [w.clicks for w in expected] == [int(scale_clicks(w.clicks, 25)) for w in plain]
    assert [(w.users, w.urls) for w in expected] == [(w.users, w.urls) for w in plain]


def test_scaled_sample_estimates_clicks_but_not_users():
    """A 10 % sample of a busier day (~45 k clicks), scaled: the day's clicks within 4 standard deviations
    of the binomial sampling noise (1.4 %), busy windows within ~15 % (about 50 sampled clicks each);
    users far below the truth (distinct counts do not scale)."""
    day, _ = generate(Scenario(start="2020-07-15 00:00", days=1, volume=2.0, seed=7))
    rng = np.random.default_rng(3)
    sample = day[rng.random(len(day)) < 0.10]
    day_clicks = day
    full = windows_from_frame(day_clicks)
    scaled = windows_from_frame(
        sample, sampling_rate=10, start=full["window_start"].iloc[0], end=full["window_start"].iloc[-1]
    )
    busy = full["clicks"].to_numpy() >= 500
    error = np.abs(scaled["clicks"].to_numpy()[busy] / full["clicks"].to_numpy()[busy] - 1)
    assert np.median(error) < 0.15
    assert abs(scaled["clicks"].sum() / full["clicks"].sum() - 1) < 4 * np.sqrt(0.9 / (0.1 * len(day)))
    users = scaled["users"].to_numpy()[busy] / full["users"].to_numpy()[busy]
    assert np.median(users) < 0.5  # most visitors are not seen at all in a 10 % sample of one window


def test_compute_windows_scales_by_the_source_settings(tmp_path):
    fields = ("timestamp", "c-ip", "cs-uri-stem", "cs-user-agent")
    lines = [f"{1594807200 + i}.000\t192.0.2.{i % 3}\t/p{i % 2}\tMozilla" for i in range(10)]
    path = tmp_path / "rt.log"
    path.write_text("\n".join(lines) + "\n")
    full = compute_windows(path, fmt="cloudfront-realtime", settings=SourceSettings(realtime_fields=fields, salt="s"))
    half = compute_windows(
        path, fmt="cloudfront-realtime", settings=SourceSettings(realtime_fields=fields, salt="s", sampling_rate=40)
    )
    assert full["clicks"].tolist() == [10] and half["clicks"].tolist() == [25]
    assert half["users"].tolist() == full["users"].tolist() == [3]
    assert half["urls"].tolist() == full["urls"].tolist() == [2]
