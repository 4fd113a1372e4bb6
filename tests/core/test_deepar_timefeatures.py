"""Frequencies, time features and lags of the numpy DeepAR, and the shared input transformation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.deepar.timefeatures import feature_names, lags_for, parse_freq, time_features, time_index
from clickstream_anomaly.deepar.transform import Transform, context_scale, fill_missing


@pytest.mark.parametrize(
    ("text", "n", "unit"),
    [
        ("10min", 10, "min"),
        ("min", 1, "min"),
        ("H", 1, "H"),
        ("2H", 2, "H"),
        ("D", 1, "D"),
        ("W", 1, "W"),
        ("M", 1, "M"),
    ],
)
def test_parse_freq(text: str, n: int, unit: str) -> None:
    freq = parse_freq(text)
    assert (freq.n, freq.unit) == (n, unit)


def test_features_follow_the_sagemaker_table() -> None:
    assert feature_names(parse_freq("10min")) == (
        "minute_of_hour",
        "hour_of_day",
        "day_of_week",
        "day_of_month",
        "day_of_year",
    )
    assert feature_names(parse_freq("H")) == ("hour_of_day", "day_of_week", "day_of_month", "day_of_year")
    assert feature_names(parse_freq("D")) == ("day_of_week", "day_of_month", "day_of_year")
    assert feature_names(parse_freq("W")) == ("day_of_month", "week_of_year")
    assert feature_names(parse_freq("M")) == ("month_of_year",)
    for text in ("10min", "H", "D", "W", "M"):
        freq = parse_freq(text)
        idx = time_index("2020-02-27 13:40:00", 400, freq)
        feats = time_features(idx, freq)
        assert feats.shape == (400, len(feature_names(freq)))
        assert feats.min() >= -0.5 and feats.max() <= 0.5


def test_time_index_steps() -> None:
    idx = time_index("2020-07-07 00:00:00", 3, parse_freq("10min"))
    assert list(idx) == [
        pd.Timestamp("2020-07-07 00:00"),
        pd.Timestamp("2020-07-07 00:10"),
        pd.Timestamp("2020-07-07 00:20"),
    ]
    months = time_index("2020-01-31", 3, parse_freq("M"))
    assert [ts.month for ts in months] == [1, 2, 3]


def test_lags_reach_a_day_back_for_sub_daily_data() -> None:
    lags = lags_for(parse_freq("10min"))
    assert {1, 143, 144, 145, 287, 288, 289} <= set(lags)
    hourly = lags_for(parse_freq("H"))
    assert {1, 24, 48, 72, 168} <= set(hourly)
    daily = lags_for(parse_freq("D"))
    assert {1, 7, 14, 21, 28, 365} <= set(daily)
    for text in ("10min", "5min", "H", "2H", "D", "W", "M"):
        lags = lags_for(parse_freq(text))
        assert list(lags) == sorted(set(lags)) and lags[0] == 1


def test_fill_missing_and_scale() -> None:
    values = np.array([np.nan, 2.0, np.nan, np.nan, 5.0, np.nan])
    assert np.array_equal(fill_missing(values), [2.0, 2.0, 2.0, 2.0, 5.0, 5.0])
    assert np.array_equal(fill_missing(np.full(3, np.nan)), np.zeros(3))
    assert context_scale(np.array([np.nan, -2.0, 4.0])) == 3.0
    assert context_scale(np.zeros(4)) == 1.0


def test_transform_window_and_step_inputs_agree() -> None:
    """Training windows and step-by-step forecasting build the same inputs (teacher forcing)."""
    freq = parse_freq("H")
    tr = Transform(freq, context_length=24, prediction_length=12, lags=lags_for(freq))
    values = np.arange(300, dtype="float64") % 17
    series = tr.prepare("2021-01-01", values, horizon=12)
    X, scale = tr.window(series, 250, 36)
    assert X.shape == (36, tr.n_inputs)
    assert scale == context_scale(values[250:274])
    for k in (0, 17, 35):
        step = tr.step_inputs(values[None, :], 250 + k, series.tf[250 + k], scale)
        assert np.allclose(step[0], X[k])
    # lags before the series start are zero
    X0, _ = tr.window(series, 0, 36)
    assert X0[0, : len(tr.lags)].sum() == 0.0
