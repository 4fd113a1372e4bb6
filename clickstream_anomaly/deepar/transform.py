"""The one transformation from a DeepAR series record to network inputs, shared by training and
forecasting so the two cannot drift apart.

Input at absolute position ``t`` of a series ``z`` (shape (F,), ``F = n_lags + n_time_features + 1``)::

    [z[t - lag] / scale for lag in lags] + time_features(t) + [log1p(scale)]

Lagged values before the series start are 0. ``scale`` is the mean absolute observed value of the
window's context range (1.0 when that is 0 or nothing is observed). Missing values (NaN) in lag inputs
are replaced by the last observed value (the first observed one at the start) when training; when
forecasting, missing values inside the context are imputed by the model's own mean (see
:meth:`clickstream_anomaly.deepar.model.DeepAR.forecast`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .timefeatures import Freq, time_features, time_index


def fill_missing(values: np.ndarray) -> np.ndarray:
    """Forward-fill NaN, then back-fill the leading ones; all-NaN becomes 0. Shape unchanged."""
    out = np.asarray(values, dtype="float64").copy()
    obs = ~np.isnan(out)
    if not obs.any():
        return np.zeros_like(out)
    idx = np.where(obs, np.arange(len(out)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = out[idx]
    first = int(np.argmax(obs))
    out[:first] = out[first]
    return out


def context_scale(values: np.ndarray) -> float:
    """Mean absolute observed value of ``values`` (1.0 if none is observed or all are 0)."""
    obs = values[~np.isnan(values)]
    s = float(np.abs(obs).mean()) if obs.size else 0.0
    return s if s > 0.0 else 1.0


@dataclass
class Series:
    """A prepared series: ``values`` (n,) with NaN, ``filled`` (n,), ``tf`` (n + horizon, n_time_features)."""

    start: pd.Timestamp
    values: np.ndarray
    filled: np.ndarray
    tf: np.ndarray


@dataclass(frozen=True)
class Transform:
    freq: Freq
    context_length: int
    prediction_length: int
    lags: tuple[int, ...]

    @property
    def max_lag(self) -> int:
        return max(self.lags)

    @property
    def n_inputs(self) -> int:
        return len(self.lags) + time_features(time_index("2020-01-01", 1, self.freq), self.freq).shape[1] + 1

    def prepare(self, start: pd.Timestamp, values: np.ndarray, horizon: int = 0) -> Series:
        """Precompute the filled values and time features for ``len(values) + horizon`` positions."""
        tf = time_features(time_index(start, len(values) + horizon, self.freq), self.freq)
        return Series(pd.Timestamp(start), values, fill_missing(values), tf)

    def window(self, series: Series, t0: int, steps: int) -> tuple[np.ndarray, float]:
        """Inputs of positions ``t0 .. t0 + steps - 1`` with teacher forcing -> (X (steps, F), scale)."""
        scale = context_scale(series.values[t0 : t0 + self.context_length])
        pos = t0 + np.arange(steps)[:, None] - np.asarray(self.lags)[None, :]
        lagged = np.where(pos >= 0, series.filled[np.clip(pos, 0, None)], 0.0) / scale
        X = np.concatenate([lagged, series.tf[t0 : t0 + steps], np.full((steps, 1), np.log1p(scale))], axis=1)
        return X, scale

    def step_inputs(self, paths: np.ndarray, t: int, tf_row: np.ndarray, scale: float) -> np.ndarray:
        """Inputs at position ``t`` for each row of ``paths`` (S, >= t) -> (S, F)."""
        pos = t - np.asarray(self.lags)
        lagged = np.where(pos >= 0, paths[:, np.clip(pos, 0, None)], 0.0) / scale
        S = paths.shape[0]
        return np.concatenate(
            [lagged, np.broadcast_to(tf_row, (S, len(tf_row))), np.full((S, 1), np.log1p(scale))], axis=1
        )
