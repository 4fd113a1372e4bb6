"""Forecast-band anomaly detection with a fitted :class:`~clickstream_anomaly.deepar.DeepAR`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..features import windows_to_records
from ..records import DEEPAR, Detection
from ..sagemaker_formats import deepar_record
from .model import DeepAR

DETECTOR = DEEPAR


def forecast_band_detections(
    windows_df: pd.DataFrame,
    model: DeepAR,
    low: float = 0.01,
    high: float = 0.99,
    column: str = "clicks",
    num_samples: int | None = None,
) -> list[Detection]:
    """Flag windows whose ``column`` falls outside the model's forecast band ``[q(low), q(high)]``.

    Semantics: the windows scored are those of ``windows_df`` at or after the end of the model's
    (first) training series, ``model.training_end()``. They are forecast in consecutive blocks of
    ``prediction_length`` windows; each block is forecast from the observed history before it: the
    training series' stored tail (``max lag + context_length`` points) overwritten by any windows of
    ``windows_df`` at the same times, plus the windows already scored (the observed values, anomalies
    included, never the forecasts). Missing windows in that history are imputed by the model. So after
    training on 7 days with ``prediction_length = 144`` (10-minute windows) a call with days 8-9 forecasts
    day 8 from days 1-7, then day 9 from days 1-8.

    Returns one :class:`Detection` per scored window, in time order: ``detector="deepar"``;
    ``p01`` / ``p50`` / ``p99`` the ``low`` / 0.5 / ``high`` quantiles of ``num_samples`` sample paths
    (default ``model.num_eval_samples``; extreme quantiles need several hundred; seeded by the model's
    ``random_state``); ``is_anomaly`` when the value is below ``p01`` or above ``p99``; ``score`` the
    distance outside the band divided by the band width (0 inside; higher is more anomalous);
    ``threshold = 0.0``.
    """
    if not 0.0 < low < 0.5 < high < 1.0:
        raise ValueError(f"need 0 < low < 0.5 < high < 1, got low={low}, high={high}")
    if column not in windows_df.columns:
        raise ValueError(f"windows have no column {column!r}")
    model._check_fitted()
    if windows_df.empty:
        return []
    frame = windows_df.sort_values("window_start", kind="stable").reset_index(drop=True)
    stamps = pd.to_datetime(frame["window_start"], utc=True).dt.tz_localize(None)
    train_end = model.training_end(0)
    tail = np.asarray(model.history_[0], dtype="float64")
    step = model.freq.offset()
    hist_start = train_end - step * len(tail)
    first = min(hist_start, stamps.min())
    last = stamps.max()
    if last < train_end:
        return []
    grid = pd.date_range(first, last, freq=step)
    pos = pd.Series(np.arange(len(grid)), index=grid)
    values = np.full(len(grid), np.nan)
    tail_pos = pos.get(hist_start)
    if tail_pos is not None:
        values[tail_pos : tail_pos + len(tail)] = tail
    at = pos.reindex(stamps.to_numpy()).to_numpy()
    if np.isnan(at).any():
        raise ValueError(f"window starts do not fall on the model's {model.time_freq} grid")
    at = at.astype("int64")
    values[at] = frame[column].to_numpy(dtype="float64")
    end_pos = int(pos[train_end]) if train_end in pos.index else int(np.searchsorted(grid, train_end))
    P = model.prediction_length
    p_lo = np.full(len(grid), np.nan)
    p_mid = np.full(len(grid), np.nan)
    p_hi = np.full(len(grid), np.nan)
    for b in range(end_pos, len(grid), P):
        samples = model.forecast(deepar_record(grid[0], values[:b]), num_samples)
        q = np.quantile(samples, [low, 0.5, high], axis=0)
        m = min(P, len(grid) - b)
        p_lo[b : b + m], p_mid[b : b + m], p_hi[b : b + m] = q[0, :m], q[1, :m], q[2, :m]
    records = windows_to_records(frame)
    out = []
    for j in np.flatnonzero(at >= end_pos):
        i = at[j]
        out.append(
            Detection.from_band(
                records[j], float(values[i]), p_lo[i], p_mid[i], p_hi[i], DETECTOR, low=low, high=high, column=column
            )
        )
    return out
