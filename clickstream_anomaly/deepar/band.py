"""Forecast-band anomaly detection with a trained DeepAR: rolling forecasts, one block at a time.

The windows after the training range are scored in *blocks* of ``prediction_length`` windows aligned
to the Unix epoch (for 10-minute windows and ``prediction_length = 144``: UTC days). Each block is
forecast once, at its first scored window (its start, except where scoring starts inside a block),
from the observed values before that window (the last
:attr:`~.predictor.DeepARPredictor.history_length` of them), as a streaming scorer does; the windows
of the block are judged against their step of that forecast. The scorer Lambda's
DeepAR path (:mod:`clickstream_anomaly.streaming.scoring`) cuts the same blocks and sends the same
history, so with the same model it gives the same bands and verdicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..features import windows_to_records
from ..records import DEEPAR, Detection
from ..sagemaker_formats import deepar_record
from .predictor import DeepARPredictor
from .timefeatures import lags_for, parse_freq, season_length

DETECTOR = DEEPAR
#: The band: [q(DEFAULT_LOW), q(DEFAULT_HIGH)] of the forecast.
DEFAULT_LOW = 0.01
DEFAULT_HIGH = 0.99
#: Sample paths per forecast: the 1 % / 99 % quantiles need several hundred.
BAND_SAMPLES = 1000


def block_end(position: int, stamp: pd.Timestamp, step: Any, prediction_length: int) -> int:
    """Position just after the epoch-aligned block of ``prediction_length`` steps holding ``stamp`` (at
    ``position`` on its grid); for calendar steps (months) blocks run from ``position`` instead."""
    if not isinstance(step, pd.Timedelta):
        return position + prediction_length
    period = int(step.value) * prediction_length
    return position + (period - int(stamp.value) % period) // int(step.value)


def band_record(grid_start: pd.Timestamp, values: np.ndarray, start: int, history: int, step: Any) -> dict:
    """The DeepAR request record of a forecast made at grid position ``start``: the ``history`` values
    before it (fewer at the start of the grid), ``values`` being on a grid from ``grid_start``."""
    lo = max(0, start - history)
    return deepar_record(grid_start + step * lo, values[lo:start])


def _predictor(model: Any) -> DeepARPredictor:
    return model if isinstance(model, DeepARPredictor) else model.predictor


def forecast_band_detections(
    windows_df: pd.DataFrame,
    model: Any,
    low: float = DEFAULT_LOW,
    high: float = DEFAULT_HIGH,
    column: str = "clicks",
    num_samples: int | None = None,
) -> list[Detection]:
    """Flag windows whose ``column`` falls outside the forecast band ``[q(low), q(high)]``.

    Parameters
    ----------
    windows_df : DataFrame
        Windows (``window_start`` and ``column``) on the model's time grid. Those at or after the end
        of the model's (first) training series are scored; earlier ones only serve as history.
    model : DeepARPredictor or DeepAR
        A trained model.
    low, high : float, default 0.01, 0.99
        Quantile levels of the band (``0 < low < 0.5 < high < 1``).
    column : str, default "clicks"
        The forecast column.
    num_samples : int, optional
        Sample paths per block (default the model's; extreme quantiles need several hundred).

    Returns
    -------
    list of Detection
        One per scored window, in time order: ``detector="deepar"``; ``p01``/``p50``/``p99`` the
        ``low``/0.5/``high`` quantiles of its block's forecast; ``is_anomaly`` when the value is
        outside them; ``score`` the distance outside the band in band widths (0 inside; higher is
        more anomalous); ``threshold = 0.0``.

    Notes
    -----
    A block's history is the model's stored training tail overwritten by the windows of
    ``windows_df`` at the same times, plus the windows already scored (observed values, anomalies
    included, never forecasts); missing windows are imputed by the model. Forecasts are seeded by the
    model's ``random_state``.
    """
    if not 0.0 < low < 0.5 < high < 1.0:
        raise ValueError(f"need 0 < low < 0.5 < high < 1, got low={low}, high={high}")
    if column not in windows_df.columns:
        raise ValueError(f"windows have no column {column!r}")
    predictor = _predictor(model)
    if windows_df.empty:
        return []
    frame = windows_df.sort_values("window_start", kind="stable").reset_index(drop=True)
    stamps = pd.to_datetime(frame["window_start"], utc=True).dt.tz_localize(None)
    train_end = predictor.training_end(0)
    if stamps.max() < train_end:
        return []
    grid, values, at = _history_grid(predictor, stamps, frame[column].to_numpy(dtype="float64"))
    end_pos = int(grid.searchsorted(train_end))
    bands = _block_bands(predictor, grid, values, end_pos, (low, 0.5, high), num_samples)
    records = windows_to_records(frame)
    detections = []
    for j, i in enumerate(at):
        if i >= end_pos:
            p01, p50, p99 = (float(b) for b in bands[:, i])
            band = Detection.from_band(
                records[j], float(values[i]), p01, p50, p99, DETECTOR, low=low, high=high, column=column
            )
            detections.append(band)
    return detections


def _history_grid(
    predictor: DeepARPredictor, stamps: pd.Series, observed: np.ndarray
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """(grid, values on it, grid position of each window): the training tail overwritten by the windows."""
    step = predictor.freq.offset()
    tail = np.asarray(predictor.history[0], dtype="float64")
    hist_start = predictor.training_end(0) - step * len(tail)
    grid = pd.date_range(min(hist_start, stamps.min()), stamps.max(), freq=step)
    pos = pd.Series(np.arange(len(grid)), index=grid)
    values = np.full(len(grid), np.nan)
    tail_pos = pos.get(hist_start)
    if tail_pos is not None:
        values[tail_pos : tail_pos + len(tail)] = tail
    at = pos.reindex(stamps.to_numpy()).to_numpy()
    if np.isnan(at).any():
        raise ValueError(f"window starts do not fall on the model's {predictor.time_freq} grid")
    at = at.astype("int64")
    values[at] = observed
    return grid, values, at


def _block_bands(
    predictor: DeepARPredictor,
    grid: pd.DatetimeIndex,
    values: np.ndarray,
    end_pos: int,
    levels: tuple[float, float, float],
    num_samples: int | None,
) -> np.ndarray:
    """Quantiles ``levels`` for every grid position from ``end_pos`` on, ndarray (3, len(grid))."""
    step = predictor.freq.offset()
    P = predictor.prediction_length
    out = np.full((3, len(grid)), np.nan)
    i = end_pos
    while i < len(grid):
        record = band_record(grid[0], values, i, predictor.history_length, step)
        q = predictor.quantiles(record, levels, num_samples)
        stop = min(block_end(i, grid[i], step, P), len(grid))
        out[:, i:stop] = q[:, : stop - i]
        i = stop
    return out


def forecast_history(time_freq: str, context_length: int | None = None) -> int:
    """Values a DeepAR forecast of ``time_freq`` data depends on: the largest lag plus ``context_length``
    (default a season), as :attr:`~.predictor.DeepARPredictor.history_length` of a model trained now."""
    freq = parse_freq(time_freq)
    return max(lags_for(freq)) + (season_length(freq) if context_length is None else int(context_length))
