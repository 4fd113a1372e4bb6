"""The DeepAR detector on 1-hour windows, and the scorer Lambda's DeepAR path giving the same bands and verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.detectors import DeepARDetector
from clickstream_anomaly.features import windows_to_records
from clickstream_anomaly.streaming.scoring import DeepARScoring, History, score_window
from clickstream_anomaly.windowspec import WindowSpec

DAYS = 16  # 13 days of 1-hour windows to train on (SageMaker's 300 values), 3 to score
OUTAGE = slice(24 * 14 + 13, 24 * 14 + 15)  # day 15, 13:00-15:00


def _hourly() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    starts = pd.date_range("2021-03-01", periods=24 * DAYS, freq="h", tz="UTC")
    rate = 40 + 30 * np.sin(2 * np.pi * (starts.hour.to_numpy() - 9) / 24)
    rate = rate * np.where(starts.day_of_week.to_numpy() >= 5, 0.8, 1.0)
    clicks = rng.poisson(rate)
    clicks[OUTAGE] = 0
    users = clicks // 2
    frame = pd.DataFrame(
        {"window_start": starts, "urls": np.minimum(clicks, 20), "users": users, "clicks": clicks, "residual": 0.0}
    )
    return WindowSpec.parse("1h").attach(frame)


@pytest.fixture(scope="module")
def hourly() -> tuple[pd.DataFrame, DeepARDetector, list]:
    windows = _hourly()
    detector = DeepARDetector(epochs=8, learning_rate=5e-3, num_cells=8, num_samples=200, random_state=1)
    return windows, detector, detector.detect(windows)


def test_the_window_length_sets_time_freq_and_the_day(hourly) -> None:
    windows, detector, dets = hourly
    model = detector.model_
    assert model.hyperparameters["time_freq"] == "1H" and model.time_freq == "H"
    assert model.context_length == model.prediction_length == 24
    assert {23, 24, 25, 168} <= set(model.transform.lags)
    # detect before fit: trained on the first 13 days (300 hourly values), the 3 later days scored
    assert model.series[0]["length"] == 24 * 13
    assert len(dets) == 24 * 3
    assert [d.window.window_start for d in dets] == list(windows["window_start"].iloc[24 * 13 :])
    assert all(d.p01 >= 0 and d.p01 <= d.p50 <= d.p99 for d in dets)
    flagged = {i + 24 * 13 for i, d in enumerate(dets) if d.is_anomaly}
    assert set(range(OUTAGE.start, OUTAGE.stop)) <= flagged and len(flagged) <= 4
    with pytest.raises(ValueError, match="trained on 1h"):
        detector.detect(WindowSpec.parse("30min").attach(windows.copy()))


def test_too_few_hourly_windows_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"DeepAR needs at least 300 \(13 days of 1h windows\)"):
        DeepARDetector(epochs=1).detect(_hourly().iloc[: 24 * 9])


def test_the_scorer_gives_the_detector_s_bands_and_verdicts(hourly) -> None:
    """Window by window through the scorer with the same model behind the endpoint."""
    windows, detector, dets = hourly
    calls = []

    def invoke(endpoint: str, body: str, content_type: str) -> bytes:
        calls.append(json.loads(body))
        return json.dumps(detector.model_.predict(body)).encode()

    cfg = DeepARScoring(window=WindowSpec.parse("1h"), num_samples=200)
    history = History(context_windows=cfg.keep_windows)
    records = windows_to_records(windows)
    for win in records[: 24 * 13]:
        history.add(win)
    scored = []
    for win in records[24 * 13 :]:
        scored += score_window(win, invoke=invoke, deepar_endpoint="deepar", history=history, deepar=cfg)
        history.add(win)
    assert len(calls) == 3  # one forecast per block (a UTC day of hourly windows)
    assert [c["configuration"]["quantiles"] for c in calls] == [["0.01", "0.5", "0.99"]] * 3
    assert all(len(c["instances"][0]["target"]) == detector.model_.history_length for c in calls)
    assert [d.to_row() for d in scored] == [d.to_row() for d in dets]
    # the state keeps the block's band, so a restarted container answers without a new request
    again = History.from_bytes(history.to_bytes(), cfg.keep_windows)
    assert again.band == history.band and len(again.clicks) == cfg.keep_windows


def test_a_scorer_starting_inside_a_block_forecasts_the_rest_of_it(hourly) -> None:
    windows, detector, _ = hourly
    calls = []

    def invoke(endpoint: str, body: str, content_type: str) -> bytes:
        calls.append(json.loads(body))
        return json.dumps(detector.model_.predict(body)).encode()

    cfg = DeepARScoring(window=WindowSpec.parse("1h"), num_samples=200)
    history = History(context_windows=cfg.keep_windows)
    records = windows_to_records(windows)
    for win in records[: 24 * 13 + 10]:
        history.add(win)
    for win in records[24 * 13 + 10 : 24 * 14 + 2]:
        assert len(score_window(win, invoke=invoke, deepar_endpoint="deepar", history=history, deepar=cfg)) == 1
        history.add(win)
    assert len(calls) == 2  # 10:00 to the end of the day, then the next day
    assert len(history.band["mid"]) == 24
