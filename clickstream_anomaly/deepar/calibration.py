"""Split-conformal calibration of the forecast spread (a local-twin addition; SageMaker DeepAR has none).

Why: DeepAR is trained with teacher forcing, so its likelihood learns the *one-step* noise given the
previous value. A day-ahead forecast by ancestral sampling also has to carry the uncertainty of the
day's level, which builds up only through the sampled feedback, and on the clickstream benchmark the
sampled [0.01, 0.99] band was too narrow: 3-11 windows of an ordinary day fell outside it when that day
ran 13 % below the day before (see the README's DeepAR section).

What: the spread of every forecast is multiplied around its median by one factor ``c``, fitted after
training on the held-out tail (the last ``prediction_length`` points of each series, forecast from the
points before them, never trained on). For a central level ``L`` (e.g. 0.98 for the [0.01, 0.99] band)
each held-out value gets the *normalised deviation*

    s = (y - q50) / (q_hi - q50)   if y >= q50,   (q50 - y) / (q50 - q_lo)   otherwise,

with ``q_lo``/``q_hi`` the ``(1 - L)/2`` / ``(1 + L)/2`` quantiles of the sample paths: the factor by
which that side of the band would have to grow to reach ``y``. ``c`` is the ``ceil((n + 1) L)``-th
smallest of the ``n`` scores (split conformal prediction, Vovk et al. 2005; the normalised score is the
one of conformalised quantile regression with a multiplicative instead of an additive correction,
Romano et al. 2019). If the held-out values and a future day were exchangeable, the calibrated band
``q50 + c (q - q50)`` would cover a future value with probability at least ``L``. They are not quite
(consecutive days, and early stopping picked the epoch on the same tail, which makes ``c`` a little
optimistic), so this is a calibration, not a guarantee. ``c`` is at least 1: the calibration only
widens (a factor below 1 would rest on the 2-3 held-out values beyond a 98 % band).

Every quantile level is scaled by the same ``c`` (a location-scale assumption), so the samples, the
mean and the quantiles of a response stay consistent; the level ``L`` is the one the band detector uses.

Limits, measured (README, DeepAR section): with one held-out day of 144 values the 98 % factor is set by
its 2nd-largest score, so one or two spikes in that day move it. Tried and dropped: stretching only the
tails beyond the 0.1 / 0.9 quantiles (keeps the quantile loss, but the factor, normalised by the narrow
tail, grew to 2.5 on a held-out day with two spikes and pushed the band's lower end below 0, hiding
an outage), and calibrating those tails at a lower level than the band's (a level shift on the held-out
day then inflated the factor to 2.8-12).
"""

from __future__ import annotations

import math

import numpy as np

#: Sample paths drawn per held-out tail to fit the factor (the band's extreme quantiles need several hundred).
CALIBRATION_SAMPLES = 1000


def normalised_deviations(samples: np.ndarray, truth: np.ndarray, level: float) -> np.ndarray:
    """Scores ``s`` (see the module docstring) of the observed ``truth`` values (NaN skipped).

    ``samples`` (n_samples, horizon), ``truth`` (horizon,); returns a 1-d array, one score per observed
    value. A side of zero width (all samples equal) is floored at 1e-9 of the series' magnitude.
    """
    truth = np.asarray(truth, dtype="float64")
    obs = ~np.isnan(truth)
    y = truth[obs]
    lo, mid, hi = np.quantile(
        np.asarray(samples, dtype="float64")[:, obs], [(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0], axis=0
    )
    floor = 1e-9 * (float(np.abs(y).mean()) if y.size else 0.0) + 1e-12
    up = (y - mid) / np.maximum(hi - mid, floor)
    down = (mid - y) / np.maximum(mid - lo, floor)
    return np.where(y >= mid, up, down)


def conformal_factor(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score (the largest when ``n`` is too small for that).

    With ``n < level / (1 - level)`` split conformal prediction has no finite factor; we then take the
    largest score (no coverage guarantee) rather than an infinite band. At least 1; 1.0 when there are
    no scores.
    """
    s = np.sort(np.asarray(scores, dtype="float64"))
    if s.size == 0:
        return 1.0
    k = min(math.ceil((s.size + 1) * level), s.size)
    return float(max(s[k - 1], 1.0))


def scale_spread(samples: np.ndarray, factor: float, counts: bool = False) -> np.ndarray:
    """``median + factor * (samples - median)`` per time step; ``counts``: rounded and clipped at 0.

    ``samples`` (n_samples, horizon); a factor of 1 returns the samples unchanged (same array values).
    """
    if factor == 1.0:
        return samples
    mid = np.median(samples, axis=0, keepdims=True)
    out = mid + factor * (samples - mid)
    if counts:
        out = np.maximum(np.round(out), 0.0)
    return out
