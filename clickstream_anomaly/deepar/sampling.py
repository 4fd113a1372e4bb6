"""Ancestral sampling: the forecast of a trained DeepAR network as sample paths (no calibration here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import network
from .likelihoods import Likelihood
from .transform import Transform, context_scale, fill_missing


def sample_paths(
    params: network.Params,
    transform: Transform,
    likelihood: Likelihood,
    start: pd.Timestamp,
    values: np.ndarray,
    n_samples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sample paths for the ``transform.prediction_length`` steps after ``values``.

    The network is run over the last ``context_length`` points of ``values`` (missing ones imputed with
    the model's mean), from a zero state; then ``n_samples`` paths are drawn step by step, each draw fed
    back as the next input. Lags reach further back than the context, so the whole of ``values`` is the
    history.

    Parameters
    ----------
    params : dict of ndarray
        The network's weights (:mod:`.network`).
    transform, likelihood
        The fitted transformation and the likelihood head the weights were trained with.
    start : Timestamp
        Time of ``values[0]`` (naive UTC).
    values : ndarray of shape (n,)
        The observed history, NaN where missing.
    n_samples : int
        Number of paths.
    rng : numpy.random.Generator
        Source of every draw.

    Returns
    -------
    ndarray of shape (n_samples, prediction_length)
        In the units of ``values``.
    """
    tr, lk, P = transform, likelihood, transform.prediction_length
    n = len(values)
    series = tr.prepare(start, values, horizon=P)
    t0 = max(n - tr.context_length, 0)
    scale = context_scale(values[t0:])
    work = np.concatenate([fill_missing(values), np.zeros(P)])[None, :]
    with network.single_threaded_blas():
        state = network.zero_state(params, 1)
        for t in range(t0, n):
            raw, state = network.step(params, tr.step_inputs(work, t, series.tf[t], scale), state)
            if np.isnan(values[t]):
                work[0, t] = lk.mean(raw, scale)[0]
        paths = np.repeat(work, n_samples, axis=0)
        state = [(np.repeat(h, n_samples, axis=0), np.repeat(c, n_samples, axis=0)) for h, c in state]
        for t in range(n, n + P):
            raw, state = network.step(params, tr.step_inputs(paths, t, series.tf[t], scale), state)
            paths[:, t] = lk.sample(raw, np.float64(scale), rng)
    return paths[:, n:]
