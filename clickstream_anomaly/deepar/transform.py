"""The one transformation from a DeepAR series record to network inputs, shared by training and
forecasting so the two cannot drift apart.

Input at absolute position ``t`` of a series ``z`` (shape (F,), ``F = n_lags + n_time_features + 1``)::

    [z[t - lag] / scale for lag in lags] + time_features(t) + [log1p(scale)]

A lag that reaches before the series start is read ``season`` steps later while that stays before
``t`` (a two-day lag on the second day reads the previous day); otherwise it is 0. ``scale`` is the mean
absolute observed value of the window's context range (1.0 when that is 0 or nothing is observed).
Missing values (NaN) in lag inputs are replaced by the last observed value (the first observed one at
the start) when training; when forecasting, missing values inside the context are imputed by the
model's own mean (see :func:`clickstream_anomaly.deepar.sampling.sample_paths`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .timefeatures import Freq, feature_names, time_features, time_index


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
    """Record -> network inputs (see the module docstring).

    ``features`` are the time feature names (default: all of ``freq``'s, see
    :func:`~.timefeatures.feature_names`); ``season`` is the step by which a lag before the series start
    is moved forward (0: such lags are 0).
    """

    freq: Freq
    context_length: int
    prediction_length: int
    lags: tuple[int, ...]
    features: tuple[str, ...] | None = None
    season: int = 0

    @property
    def max_lag(self) -> int:
        return max(self.lags)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return feature_names(self.freq) if self.features is None else self.features

    @property
    def n_inputs(self) -> int:
        return len(self.lags) + len(self.feature_names) + 1

    def first_complete(self) -> int:
        """The first position at which every lag reads an observed position (after the fallback)."""
        t = np.arange(self.max_lag + 1)
        ok = (self._positions(t) >= 0).all(axis=1)
        return int(np.argmax(ok)) if ok.any() else self.max_lag

    def _positions(self, t: np.ndarray) -> np.ndarray:
        """Lagged positions (len(t), n_lags), moved forward by ``season`` where before 0; -1 where none."""
        t = np.asarray(t)[:, None]
        pos = t - np.asarray(self.lags)[None, :]
        if self.season > 0:
            k = np.ceil(np.maximum(-pos, 0) / self.season).astype("int64")
            moved = pos + k * self.season
            pos = np.where((pos < 0) & (moved < t), moved, pos)
        return np.where(pos >= 0, pos, -1)

    def prepare(self, start: pd.Timestamp, values: np.ndarray, horizon: int = 0) -> Series:
        """Precompute the filled values and time features for ``len(values) + horizon`` positions."""
        tf = time_features(time_index(start, len(values) + horizon, self.freq), self.freq, self.feature_names)
        return Series(pd.Timestamp(start), values, fill_missing(values), tf)

    def window(self, series: Series, t0: int, steps: int) -> tuple[np.ndarray, float]:
        """Inputs of positions ``t0 .. t0 + steps - 1`` with teacher forcing -> (X (steps, F), scale)."""
        scale = context_scale(series.values[t0 : t0 + self.context_length])
        pos = self._positions(t0 + np.arange(steps))
        lagged = np.where(pos >= 0, series.filled[np.clip(pos, 0, None)], 0.0) / scale
        X = np.concatenate([lagged, series.tf[t0 : t0 + steps], np.full((steps, 1), np.log1p(scale))], axis=1)
        return X, scale

    def step_inputs(self, paths: np.ndarray, t: int, tf_row: np.ndarray, scale: float) -> np.ndarray:
        """Inputs at position ``t`` for each row of ``paths`` (S, >= t) -> (S, F)."""
        pos = self._positions(np.array([t]))[0]
        lagged = np.where(pos >= 0, paths[:, np.clip(pos, 0, None)], 0.0) / scale
        S = paths.shape[0]
        return np.concatenate(
            [lagged, np.broadcast_to(tf_row, (S, len(tf_row))), np.full((S, 1), np.log1p(scale))], axis=1
        )
