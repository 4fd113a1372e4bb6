"""Forecast metrics as SageMaker DeepAR reports them."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

TEST_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def mean_weighted_quantile_loss(
    samples: np.ndarray, truth: np.ndarray, quantiles: Iterable[float] = TEST_QUANTILES
) -> float:
    """SageMaker's ``test:mean_wQuantileLoss``: mean over ``quantiles`` of ``2 sum |QL_q| / sum |y|``.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, horizon)
        Sample paths; their empirical quantiles are the forecast.
    truth : ndarray of shape (horizon,)
        Observed values; missing (NaN) ones are skipped.

    Returns
    -------
    float
        Lower is better; NaN if nothing is observed or the observed values sum to 0.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([10.0, 20.0, 30.0])
    >>> mean_weighted_quantile_loss(np.tile(truth, (5, 1)), truth)
    0.0
    >>> round(mean_weighted_quantile_loss(np.tile(truth - 10.0, (5, 1)), truth, [0.5]), 3)
    0.5
    """
    obs = ~np.isnan(truth)
    y = truth[obs]
    denom = np.abs(y).sum()
    if not obs.any() or denom == 0:
        return float("nan")
    qs = list(quantiles)
    pred = np.quantile(samples[:, obs], qs, axis=0)
    diff = y[None, :] - pred
    tau = np.asarray(qs)[:, None]
    return float(np.mean(2.0 * np.maximum(tau * diff, (tau - 1.0) * diff).sum(axis=1) / denom))
