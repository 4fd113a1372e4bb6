"""What the baseline does for a *generic* column: a metric without a known noise model (CPU, bytes, latency,
a price), as opposed to the window features, whose counts follow Poisson noise on the square-root scale.

Two things are added for such a column (see :class:`~.model.SeasonalState`):

* **a flat competitor.** Besides the seasonal prediction (level x daily profile x weekly factor) the
  column is also predicted by the median of its last ``level_window`` values, with the root mean square
  of that predictor's errors as spread. Each window both predictors are judged by their predictive log
  score (log variance plus the squared deviation in spreads, clipped at ``huber``), exponentially
  weighted over the spread half-life, and the column is judged by the better one: a series without a
  daily rhythm does not pay for a noisy profile, a series with one keeps it.
* **novelty.** The deviation from the prediction (in the column's units) is compared with the deviations
  of the last ``novelty_memory`` windows: :func:`newness` is its distance to the nearest of them over the
  range holding 98 % of them. The column's score is the geometric mean of how unexpected (``|z| /
  point_threshold``) and how new the deviation is, so a window is anomalous when ``|z| * novelty >=
  point_threshold``: 5 spreads off and a whole range from every recent deviation, or 20 spreads off and a
  quarter of a range. A spike that comes every hour, a burst like the bursts of the past days, the other
  level of a series that switches between two are old news however many spreads they are; a value the
  series has not produced lately is news. The windows of an anomaly still going on are left out of the
  reference, so its later windows stay as new as its first. Until the reference holds ``drift_memory``
  deviations there is no verdict (the column's warm-up is that much longer).

Real-valued columns (generic or not) also get a floor on their spread from their **resolution**: the
smallest change seen between consecutive windows. A metric that moves in steps (CPU in 0.1 %, a count
reported as a rate) cannot be predicted closer than half a step, so a one-step change is not a
20-spread deviation.
"""

from __future__ import annotations

import math

import numpy as np

#: Share of the reference the range of :func:`newness` holds (between its 1 % and 99 % points).
RANGE_PERCENTILES = (1.0, 99.0)


def newness(value: float, reference: np.ndarray, floor: float, neighbours: int = 1) -> float:
    """How new ``value`` is against ``reference``: its distance to the ``neighbours``-th nearest reference
    value over the range between the reference's 1 % and 99 % points (at least ``floor``); ``inf`` for a
    reference with fewer values than ``neighbours``.

    Parameters
    ----------
    value : float
        The deviation to judge.
    reference : ndarray of shape (n,)
        Earlier deviations.
    floor : float
        Smallest range (a constant reference would make every change infinitely new).
    neighbours : int, default 1
        How many earlier deviations near it make a deviation old news: 1, a single one; more, so that a
        kind of anomaly that recurs a few times in the reference stays new.

    Returns
    -------
    float
        0 for a value seen before, 1 for one a whole range away from every earlier one.

    Examples
    --------
    >>> ref = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 10.0])
    >>> newness(10.0, ref, 0.1), round(newness(20.0, ref, 0.1), 3)  # seen before; 10 away over a range of 9.65
    (0.0, 1.036)
    >>> round(newness(10.0, ref, 0.1, neighbours=2), 3)  # seen once only: 6 from the second nearest (4.0)
    0.622
    """
    if len(reference) < max(neighbours, 1):
        return math.inf
    lo, hi = np.percentile(reference, RANGE_PERCENTILES)
    distance = np.abs(reference - value)
    nearest = distance.min() if neighbours <= 1 else np.partition(distance, neighbours - 1)[neighbours - 1]
    return float(nearest) / max(float(hi - lo), floor)


def log_score(t: np.ndarray, pred: np.ndarray, sd: np.ndarray, huber: float) -> np.ndarray:
    """Predictive log score of Gaussian predictions, robust to outliers (lower is better).

    Parameters
    ----------
    t : ndarray
        Observed values.
    pred, sd : ndarrays broadcasting with ``t``
        Predicted values and spreads (> 0).
    huber : float
        Squared deviations are clipped at ``huber ** 2``: one incident cannot decide the competition.

    Returns
    -------
    ndarray
        ``2 log sd + min(((t - pred) / sd) ** 2, huber ** 2)``: twice the negative Gaussian log density
        up to a constant; it charges both a wrong prediction and a needlessly wide spread.

    Examples
    --------
    >>> log_score(np.array([1.0, 1.0]), np.array([0.0, 0.0]), np.array([1.0, 2.0]), 3.0).round(3).tolist()
    [1.0, 1.636]
    """
    return 2.0 * np.log(sd) + np.minimum(((t - pred) / sd) ** 2, huber**2)
