"""Gradient checks of the numpy DeepAR network and likelihoods against central finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clickstream_anomaly.deepar import network
from clickstream_anomaly.deepar.likelihoods import LIKELIHOODS, digamma, lgamma

H_STEP = 1e-6


def _rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def _targets(name: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if name == "negative-binomial":
        return rng.poisson(6.0, size=shape).astype("float64")
    return rng.normal(5.0, 3.0, size=shape)


def test_lgamma_digamma_match_reference() -> None:
    x = np.array([1e-4, 0.3, 1.0, 2.5, 6.9, 7.0, 33.3, 1e5])
    assert np.allclose(lgamma(x), [math.lgamma(v) for v in x], rtol=0, atol=1e-9)
    h = 1e-5
    numeric = (lgamma(x + h) - lgamma(x - h)) / (2 * h)
    assert np.allclose(digamma(x[1:]), numeric[1:], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_likelihood_gradient_matches_finite_differences(name: str) -> None:
    rng = np.random.default_rng(3)
    lk = LIKELIHOODS[name]
    raw = rng.normal(0.0, 1.0, size=(4, 6, lk.n_params))
    z = _targets(name, rng, (4, 6))
    scale = rng.uniform(0.5, 5.0, size=(1, 6))
    nll, grad = lk.nll(raw, z, scale)
    assert np.isfinite(nll).all()
    numeric = np.zeros_like(raw)
    for idx in np.ndindex(raw.shape):
        old = raw[idx]
        raw[idx] = old + H_STEP
        plus = lk.nll(raw, z, scale)[0].sum()
        raw[idx] = old - H_STEP
        minus = lk.nll(raw, z, scale)[0].sum()
        raw[idx] = old
        numeric[idx] = (plus - minus) / (2 * H_STEP)
    assert _rel_error(grad, numeric) <= 1e-5


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
@pytest.mark.parametrize("zoneout_rate", [0.0, 0.3])
def test_network_gradient_matches_finite_differences(name: str, zoneout_rate: float) -> None:
    """Whole network (2 LSTM layers, zoneout masks fixed, head, likelihood) in float64."""
    rng = np.random.default_rng(7)
    lk = LIKELIHOODS[name]
    T, B, F, H = 5, 3, 4, 3
    params = network.init_params(F, H, 2, lk.n_params, rng)
    params = {k: v + rng.normal(0.0, 0.3, v.shape) for k, v in params.items()}
    X = rng.normal(size=(T, B, F))
    z = _targets(name, rng, (T, B))
    mask = rng.random((T, B)) > 0.2  # some targets missing: they must not count
    scale = rng.uniform(1.0, 4.0, size=(1, B))
    zoneout = network.zoneout_masks(params, T, B, zoneout_rate, rng)

    def loss(p: network.Params) -> float:
        raw, _ = network.forward(p, X, zoneout)
        return float((lk.nll(raw, np.where(mask, z, 0.0), scale)[0] * mask).sum())

    raw, cache = network.forward(params, X, zoneout)
    _, d_raw = lk.nll(raw, np.where(mask, z, 0.0), scale)
    grads = network.backward(params, cache, d_raw * mask[..., None])
    assert set(grads) == set(params)
    for key, value in params.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + H_STEP
            plus = loss(params)
            value[idx] = old - H_STEP
            minus = loss(params)
            value[idx] = old
            numeric[idx] = (plus - minus) / (2 * H_STEP)
        assert grads[key].shape == value.shape
        assert _rel_error(grads[key], numeric) <= 1e-5, key


def test_step_matches_forward_without_zoneout() -> None:
    rng = np.random.default_rng(0)
    params = network.init_params(4, 5, 2, 3, rng)
    X = rng.normal(size=(6, 2, 4))
    raw, _ = network.forward(params, X)
    state = network.zero_state(params, 2)
    for t in range(6):
        out, state = network.step(params, X[t], state)
        assert np.allclose(out, raw[t], atol=1e-12)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_sampling_matches_distribution_mean(name: str) -> None:
    rng = np.random.default_rng(11)
    lk = LIKELIHOODS[name]
    raw = np.tile(np.array([0.8, -0.5, 1.0][: lk.n_params]), (40_000, 1))
    scale = np.float64(20.0)
    draws = lk.sample(raw, scale, rng)
    mean = lk.mean(raw[:1], scale)[0]
    assert draws.shape == (40_000,)
    assert abs(draws.mean() - mean) < 0.03 * abs(mean) + 0.1
    if name == "negative-binomial":
        assert (draws >= 0).all() and np.allclose(draws, np.round(draws))
