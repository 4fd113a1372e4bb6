"""Forecast-band detections: scoring after the training range, block by block, with the band recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.deepar import DeepAR, forecast_band_detections
from clickstream_anomaly.records import Detection
from clickstream_anomaly.sagemaker_formats import series_from_windows

DAYS_TRAIN = 20
OUTAGE = slice(24 * (DAYS_TRAIN + 1) + 12, 24 * (DAYS_TRAIN + 1) + 15)  # day 22, 12:00-15:00


def _windows() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 24 * (DAYS_TRAIN + 2)
    hour = np.arange(n) % 24
    clicks = rng.poisson(30 + 25 * np.sin(2 * np.pi * (hour - 9) / 24)).astype("int64")
    clicks[OUTAGE] = 0
    users = np.maximum(clicks // 2, 0)
    return pd.DataFrame(
        {
            "window_start": pd.date_range("2021-03-01", periods=n, freq="h", tz="UTC"),
            "urls": np.minimum(clicks, 20),
            "users": users,
            "clicks": clicks,
            "residual": clicks - users,
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, DeepAR]:
    windows = _windows()
    model = DeepAR(
        context_length=24,
        prediction_length=24,
        time_freq="H",
        epochs=8,
        num_cells=16,
        num_layers=1,
        likelihood="negative-binomial",
        dropout_rate=0.0,
        learning_rate=5e-3,
        mini_batch_size=32,
        num_eval_samples=200,
        random_state=0,
    )
    model.fit([series_from_windows(windows.iloc[: 24 * DAYS_TRAIN])])
    return windows, model


@pytest.mark.slow
def test_band_flags_the_outage_and_records_the_band(fitted) -> None:
    windows, model = fitted
    dets = forecast_band_detections(windows, model)
    assert len(dets) == 48 and all(isinstance(d, Detection) for d in dets)
    starts = [d.window.window_start for d in dets]
    assert starts == sorted(starts)
    assert pd.Timestamp(starts[0]) == windows["window_start"].iloc[24 * DAYS_TRAIN]
    flagged = {i for i, d in enumerate(dets) if d.is_anomaly}
    outage = set(range(OUTAGE.start - 24 * DAYS_TRAIN, OUTAGE.stop - 24 * DAYS_TRAIN))
    assert outage <= flagged
    assert len(flagged - outage) <= 3
    for d in dets:
        assert d.detector == "deepar" and d.threshold == 0.0
        assert d.p01 <= d.p50 <= d.p99
        y = d.window.clicks
        if d.is_anomaly:
            below = d.p01 - y if y < d.p01 else y - d.p99
            assert d.score == pytest.approx(below / (d.p99 - d.p01))
            assert d.score > 0
        else:
            assert d.p01 <= y <= d.p99 and d.score == 0.0
    row = dets[0].to_row()
    assert row["p01"] == dets[0].p01 and row["detector"] == "deepar"


def test_history_comes_from_the_model_when_windows_start_later(fitted) -> None:
    windows, model = fitted
    full = forecast_band_detections(windows, model, low=0.05, high=0.95)
    later = forecast_band_detections(
        windows.iloc[24 * DAYS_TRAIN :].sample(frac=1.0, random_state=0), model, low=0.05, high=0.95
    )
    assert [(d.window, d.p01, d.p50, d.p99, d.score) for d in later] == [
        (d.window, d.p01, d.p50, d.p99, d.score) for d in full
    ]
    # a wider band flags no more windows than a narrower one
    wide = forecast_band_detections(windows, model, low=0.01, high=0.99)
    assert sum(d.is_anomaly for d in wide) <= sum(d.is_anomaly for d in full)


def test_band_edge_cases(fitted) -> None:
    windows, model = fitted
    assert forecast_band_detections(windows.iloc[: 24 * DAYS_TRAIN], model) == []
    with pytest.raises(ValueError, match=r"low < 0\.5 < high"):
        forecast_band_detections(windows, model, low=0.6, high=0.9)
    with pytest.raises(ValueError, match="column"):
        forecast_band_detections(windows, model, column="nope")
    shifted = windows.iloc[24 * DAYS_TRAIN :].copy()
    shifted["window_start"] += pd.Timedelta(minutes=7)
    with pytest.raises(ValueError, match="grid"):
        forecast_band_detections(shifted, model)
