"""Split-conformal calibration of the forecast tails (a local-twin addition; SageMaker DeepAR has none).

Why: DeepAR is trained with teacher forcing, so its likelihood learns the *one-step* noise given the
previous value. A day-ahead forecast by ancestral sampling also has to carry the uncertainty of the
day's level, which builds up only through the sampled feedback, and on the clickstream benchmark the
sampled [0.01, 0.99] band was too narrow: 3-11 windows of an ordinary day fell outside it when that day
ran 13 % below the day before (see the README's DeepAR section).

What: the tails of every forecast, beyond its 0.1 and 0.9 quantiles (the *body*), are stretched away
from the body by one factor ``c``, fitted after training on the held-out tail of the series (the last
``prediction_length`` points of each, forecast from the points before them, never trained on). The body
is left alone because early stopping already picked the epoch whose 0.1..0.9 quantiles forecast that
same held-out tail best (``test:mean_wQuantileLoss``); calibration fixes only what early stopping does not
look at. For a central level ``L`` above 0.8 (0.98 for the [0.01, 0.99] band), with ``q_lo``/``q_hi``
the ``(1 - L)/2`` / ``(1 + L)/2`` quantiles of the sample paths, each held-out value gets the score

    s = (y - q90) / (q_hi - q90)   if y > q90,   (q10 - y) / (q10 - q_lo)   if y < q10,   0 otherwise,

the factor by which that tail would have to stretch for the band to reach ``y``. ``c`` is the
``ceil((n + 1) L)``-th smallest of the ``n`` scores: split conformal prediction (Vovk et al. 2005) with a
normalised score, the same construction as conformalised quantile regression (Romano et al. 2019) with a
multiplicative instead of an additive correction of the interval ends. Were the held-out values and a
future day exchangeable, the calibrated band would cover a future value with probability at least
``L``. They are not quite (consecutive days, and early stopping chose the epoch on the same tail, which
makes ``c`` a little optimistic), so this is a calibration, not a guarantee. ``c`` is at least 1: the
calibration only widens. A factor below 1 would rest on the few held-out values beyond the body (about
3 of 144 at L = 0.98), and with a short held-out tail that the body happens to cover it would be 0 and
collapse the band onto the 0.1 / 0.9 quantiles.

Applied to the samples (``q90 + c (z - q90)`` above the body, ``q10 - c (q10 - z)`` below, per time
step), the transformation is monotone, so the response's samples, mean and quantiles stay consistent; a
quantile inside [0.1, 0.9] is unchanged, one outside moves to ``q90 + c (q - q90)`` (or its mirror).
"""

from __future__ import annotations

import math

import numpy as np

#: Sample paths drawn per held-out tail to fit the factor (the band's extreme quantiles need several hundred).
CALIBRATION_SAMPLES = 1000


#: The body of the forecast distribution, [BODY, 1 - BODY]: quantiles inside it are never changed.
BODY = 0.1


def normalised_deviations(samples: np.ndarray, truth: np.ndarray, level: float) -> np.ndarray:
    """Scores ``s`` (see the module docstring) of the observed ``truth`` values (NaN skipped).

    ``samples`` (n_samples, horizon), ``truth`` (horizon,), ``level`` in (0.8, 1); returns a 1-d array,
    one score per observed value. A tail of zero width (all samples equal) is floored at 1e-9 of the
    series' magnitude, so the score is huge but finite.
    """
    if not 1.0 - 2.0 * BODY < level < 1.0:
        raise ValueError(f"calibration level must be in ({1.0 - 2.0 * BODY:g}, 1), got {level!r}")
    truth = np.asarray(truth, dtype="float64")
    obs = ~np.isnan(truth)
    y = truth[obs]
    lo, b_lo, b_hi, hi = np.quantile(np.asarray(samples, dtype="float64")[:, obs],
                                     [(1.0 - level) / 2.0, BODY, 1.0 - BODY, (1.0 + level) / 2.0], axis=0)
    floor = 1e-9 * (float(np.abs(y).mean()) if y.size else 0.0) + 1e-12
    up = (y - b_hi) / np.maximum(hi - b_hi, floor)
    down = (b_lo - y) / np.maximum(b_lo - lo, floor)
    return np.where(y > b_hi, up, np.where(y < b_lo, down, 0.0))


def conformal_factor(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score, and at least 1 (see the module docstring).

    With ``n < level / (1 - level)`` split conformal prediction has no finite factor; we then take the
    largest score (no coverage guarantee) rather than an infinite band. 1.0 when there are no scores.
    """
    s = np.sort(np.asarray(scores, dtype="float64"))
    if s.size == 0:
        return 1.0
    k = min(math.ceil((s.size + 1) * level), s.size)
    return float(max(s[k - 1], 1.0))


def scale_tails(samples: np.ndarray, factor: float, counts: bool = False) -> np.ndarray:
    """Stretch the samples beyond each step's 0.1 / 0.9 quantiles away from them by ``factor``.

    ``samples`` (n_samples, horizon); ``counts``: the result is rounded and clipped at 0. A factor of 1
    returns ``samples`` itself.
    """
    if factor == 1.0:
        return samples
    b_lo, b_hi = np.quantile(samples, [BODY, 1.0 - BODY], axis=0, keepdims=True)
    out = np.where(samples > b_hi, b_hi + factor * (samples - b_hi),
                   np.where(samples < b_lo, b_lo + factor * (samples - b_lo), samples))
    if counts:
        out = np.maximum(np.round(out), 0.0)
    return out
