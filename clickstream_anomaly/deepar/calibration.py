"""Calibration of the forecast spread on held-out days (a local-twin addition; SageMaker DeepAR has none).

Why: DeepAR is trained with teacher forcing, so its likelihood learns the *one-step* noise given the
previous value. A day-ahead forecast by ancestral sampling also has to carry the uncertainty of the
day's level, which builds up only through the sampled feedback, so the sampled band can be too narrow
(or, on clean counts, a little too wide).

What: the spread of every forecast around its per-step median is multiplied by a factor ``c`` below the
median and by a factor ``c'`` above it (:class:`BandCalibration`; a monotone map of each step's
samples, so samples, quantiles and mean stay consistent). For a central level ``L`` each held-out value
``y`` gets the *normalised deviation* of its side (:func:`side_deviations`)::

    s = (y - q50) / (q_hi - q50)   if y >= q50,   (q50 - y) / (q50 - q_lo)   otherwise,

with ``q_lo``/``q_hi`` the ``(1 - L)/2`` / ``(1 + L)/2`` quantiles of the sample paths: the factor by
which that side of the band would have to grow to reach ``y``. The factor is the split-conformal
quantile of these scores (:func:`conformal_factor`, Vovk et al. 2005; the normalised score of
conformalised quantile regression with a multiplicative correction, Romano et al. 2019).

The scores are normalised by, and fitted to, the band of level ``fit_level`` (the estimator uses
:data:`FIT_LEVEL`, 0.95, or the band's level if lower: on one held-out day of 144 values a 98 % factor
is the 2nd-largest score, so one or two spikes set it, while the 95 % factor is the 7th-largest), and
the one factor scales the whole spread (so the tails are assumed to scale like
the body). The factor is symmetric by default: a held-out day's level shift, up or down, says nothing
about the direction of the next day's. It is at least 1: the calibration only widens. It is a
calibration, not a guarantee: consecutive days are not exchangeable, and early stopping chose the
epoch on the same days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Sample paths drawn per held-out tail to fit the factors (the band's extreme quantiles need several hundred).
CALIBRATION_SAMPLES = 1000
#: The central level whose band the factor is fitted to (see the module docstring).
FIT_LEVEL = 0.95


@dataclass(frozen=True)
class BandCalibration:
    """Spread factors below and above the per-step median (1, 1: the raw forecast), and the central
    ``level`` of the band they were fitted for (None: calibration off)."""

    low: float = 1.0
    high: float = 1.0
    level: float | None = None

    @property
    def identity(self) -> bool:
        return self.low == 1.0 and self.high == 1.0

    def apply(self, samples: np.ndarray, counts: bool = False) -> np.ndarray:
        """Calibrated samples, ndarray of the shape of ``samples`` (n_samples, horizon).

        ``median + factor * (sample - median)`` per step, ``low`` below the median and ``high`` above;
        ``counts``: rounded and clipped at 0. The identity returns ``samples`` itself.
        """
        return scale_spread(samples, self.low, self.high, counts=counts)

    def to_dict(self) -> dict[str, float | None]:
        return {"low": self.low, "high": self.high, "level": self.level}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BandCalibration:
        """The inverse of :meth:`to_dict` (``data``: the decoded JSON object)."""
        level = data.get("level")
        return cls(float(data["low"]), float(data["high"]), None if level is None else float(level))


def side_deviations(samples: np.ndarray, truth: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """``(below, above)`` scores ``s`` (see the module docstring) of the observed ``truth`` values.

    ``samples`` (n_samples, horizon), ``truth`` (horizon,), NaN skipped. Each returned array has one
    entry per observed value: its score on its own side of the median, 0 on the other side. A side of
    zero width (all samples equal) is floored at 1e-9 of the series' magnitude.
    """
    truth = np.asarray(truth, dtype="float64")
    obs = ~np.isnan(truth)
    y = truth[obs]
    lo, mid, hi = np.quantile(
        np.asarray(samples, dtype="float64")[:, obs], [(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0], axis=0
    )
    floor = 1e-9 * (float(np.abs(y).mean()) if y.size else 0.0) + 1e-12
    above = np.where(y >= mid, (y - mid) / np.maximum(hi - mid, floor), 0.0)
    below = np.where(y < mid, (mid - y) / np.maximum(mid - lo, floor), 0.0)
    return below, above


def conformal_factor(scores: np.ndarray, level: float, minimum: float = 1.0) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score (the largest when ``n`` is too small for that).

    With ``n < level / (1 - level)`` split conformal prediction has no finite factor; we then take the
    largest score (no coverage guarantee) rather than an infinite band. At least ``minimum``; 1.0 when
    there are no scores.
    """
    s = np.sort(np.asarray(scores, dtype="float64"))
    if s.size == 0:
        return 1.0
    k = min(math.ceil((s.size + 1) * level), s.size)
    return float(max(s[k - 1], minimum))


def fit_calibration(
    samples: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    level: float,
    *,
    fit_level: float | None = None,
    symmetric: bool = True,
    minimum: float = 1.0,
) -> BandCalibration:
    """Factors that make the ``level`` band of ``samples`` cover ``truths`` (held-out days).

    Parameters
    ----------
    samples : sequence of ndarray of shape (n_samples, horizon)
        Raw forecasts of the held-out tails.
    truths : sequence of ndarray of shape (horizon,)
        What happened (NaN: missing).
    level : float in (0, 1)
        The central level of the band to calibrate (0.98 for [0.01, 0.99]).
    fit_level : float in (0, 1), optional
        The level whose band the scores are normalised by and whose coverage is fitted (default
        ``level``); a lower level rests on more values and is less moved by a few outliers, and
        assumes the tails scale like the body.
    symmetric : bool
        One factor for both sides (each value's larger deviation), else one per side.
    minimum : float
        Smallest factor (1.0: the calibration only widens).
    """
    fl = level if fit_level is None else fit_level
    parts = [side_deviations(s, y, fl) for s, y in zip(samples, truths, strict=True)]
    below = np.concatenate([b for b, _ in parts]) if parts else np.empty(0)
    above = np.concatenate([a for _, a in parts]) if parts else np.empty(0)
    if symmetric:
        c = conformal_factor(np.maximum(below, above), fl, minimum)
        return BandCalibration(c, c, level)
    side = (1.0 + fl) / 2.0
    return BandCalibration(conformal_factor(below, side, minimum), conformal_factor(above, side, minimum), level)


def scale_spread(samples: np.ndarray, low: float, high: float | None = None, counts: bool = False) -> np.ndarray:
    """``median + factor * (samples - median)`` per time step (``low`` below the median, ``high``, default
    ``low``, above); ``counts``: rounded and clipped at 0.

    ``samples`` (n_samples, horizon); factors of 1 return the samples unchanged (the same array).
    """
    high = low if high is None else high
    if low == 1.0 and high == 1.0:
        return samples
    mid = np.median(samples, axis=0, keepdims=True)
    dev = samples - mid
    out = mid + (low * dev if low == high else np.where(dev < 0, low, high) * dev)
    if counts:
        out = np.maximum(np.round(out), 0.0)
    return out
