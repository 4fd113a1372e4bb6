"""Likelihood heads of the DeepAR network: parameter maps, negative log-likelihood, its gradient, sampling.

Each likelihood turns ``raw`` network outputs, ndarray of shape (..., n_params), into the parameters of
a distribution of the *scaled* target ``y = z / scale`` (``scale`` is the window's mean absolute
observed value, see :mod:`.model`), and back to the original units of ``z``:

* ``gaussian``: ``mu = raw0``, ``sigma = softplus(raw1)``; ``z = scale * y``.
* ``student-T``: ``mu = raw0``, ``sigma = softplus(raw1)``, ``nu = 2 + softplus(raw2)``.
* ``negative-binomial`` (counts, as in the DeepAR paper): mean ``scale * softplus(raw0)``, shape
  ``alpha = softplus(raw1) / sqrt(scale)``; variance ``m + alpha m^2``.

``nll(raw, z, scale)`` returns the negative log-likelihood of ``z`` (original units, including the
``log scale`` Jacobian for the continuous ones) and its gradient with respect to ``raw``. Everything is
float64 numpy; ``lgamma``/``digamma`` are implemented here so the core needs no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeAlias

import numpy as np

_EPS = 1e-6
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

#: The window scale: one number, or an array broadcastable to ``z``.
Scale: TypeAlias = np.ndarray | float


def softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _shift(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Recurrence to move ``x > 0`` to ``>= 7``; returns (shifted x, accumulated correction)."""
    y = np.array(x, dtype="float64", copy=True)
    acc = np.zeros_like(y)
    for _ in range(7):
        small = y < 7.0
        if not small.any():
            break
        acc = acc - np.where(small, fn(np.where(small, y, 1.0)), 0.0)
        y = np.where(small, y + 1.0, y)
    return y, acc


def lgamma(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) for x > 0 (Stirling series after the recurrence; abs. error < 1e-10)."""
    y, acc = _shift(x, np.log)
    inv = 1.0 / y
    inv2 = inv * inv
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    return acc + (y - 0.5) * np.log(y) - y + _HALF_LOG_2PI + series


def digamma(x: np.ndarray) -> np.ndarray:
    """d/dx log Gamma(x) for x > 0 (asymptotic series after the recurrence; abs. error < 1e-10)."""
    y, acc = _shift(x, lambda v: 1.0 / v)
    inv = 1.0 / y
    inv2 = inv * inv
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return acc + np.log(y) - 0.5 * inv - series


class Likelihood:
    """Interface; see the module docstring. ``z`` must hold no NaN (mask it out before calling)."""

    name = ""
    n_params = 0
    counts = False  # samples are non-negative integers (kept so by a calibrated spread)

    def nll(self, raw: np.ndarray, z: np.ndarray, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
        """``raw`` (..., k), ``z`` (...), ``scale`` broadcastable to ``z`` -> (nll (...), d nll/d raw (..., k))."""
        raise NotImplementedError

    def sample(self, raw: np.ndarray, scale: Scale, rng: np.random.Generator) -> np.ndarray:
        """One draw of ``z`` per leading index, ndarray of shape ``raw.shape[:-1]``."""
        raise NotImplementedError

    def mean(self, raw: np.ndarray, scale: Scale) -> np.ndarray:
        """The distribution's mean of ``z`` (used to impute missing context values)."""
        raise NotImplementedError

    def check_targets(self, values: np.ndarray) -> None:
        """Raise ``ValueError`` for observed values outside the support (NaN are missing, allowed)."""


class Gaussian(Likelihood):
    name = "gaussian"
    n_params = 2

    def nll(self, raw: np.ndarray, z: np.ndarray, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
        mu, r1 = raw[..., 0], raw[..., 1]
        sigma = softplus(r1) + _EPS
        y = z / scale
        d = (y - mu) / sigma
        nll = _HALF_LOG_2PI + np.log(sigma) + 0.5 * d * d + np.log(scale)
        grad = np.empty_like(raw)
        grad[..., 0] = -d / sigma
        grad[..., 1] = (1.0 / sigma - d * d / sigma) * sigmoid(r1)
        return nll, grad

    def sample(self, raw: np.ndarray, scale: Scale, rng: np.random.Generator) -> np.ndarray:
        sigma = softplus(raw[..., 1]) + _EPS
        return scale * (raw[..., 0] + sigma * rng.standard_normal(raw.shape[:-1]))

    def mean(self, raw: np.ndarray, scale: Scale) -> np.ndarray:
        return scale * raw[..., 0]


class StudentT(Likelihood):
    name = "student-T"
    n_params = 3

    def nll(self, raw: np.ndarray, z: np.ndarray, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
        mu, r1, r2 = raw[..., 0], raw[..., 1], raw[..., 2]
        sigma = softplus(r1) + _EPS
        nu = 2.0 + softplus(r2)
        y = z / scale
        d = (y - mu) / sigma
        q = 1.0 + d * d / nu
        nll = (
            lgamma(nu / 2.0)
            - lgamma((nu + 1.0) / 2.0)
            + 0.5 * np.log(math.pi * nu)
            + np.log(sigma)
            + 0.5 * (nu + 1.0) * np.log(q)
            + np.log(scale)
        )
        k = (nu + 1.0) / (nu * q)
        grad = np.empty_like(raw)
        grad[..., 0] = -k * d / sigma
        grad[..., 1] = (1.0 / sigma - k * d * d / sigma) * sigmoid(r1)
        dnu = (
            0.5 * digamma(nu / 2.0)
            - 0.5 * digamma((nu + 1.0) / 2.0)
            + 0.5 / nu
            + 0.5 * np.log(q)
            - 0.5 * (nu + 1.0) * d * d / (nu * nu * q)
        )
        grad[..., 2] = dnu * sigmoid(r2)
        return nll, grad

    def sample(self, raw: np.ndarray, scale: Scale, rng: np.random.Generator) -> np.ndarray:
        sigma = softplus(raw[..., 1]) + _EPS
        nu = 2.0 + softplus(raw[..., 2])
        return scale * (raw[..., 0] + sigma * rng.standard_t(nu))

    def mean(self, raw: np.ndarray, scale: Scale) -> np.ndarray:
        return scale * raw[..., 0]


class NegativeBinomial(Likelihood):
    name = "negative-binomial"
    n_params = 2
    counts = True

    def nll(self, raw: np.ndarray, z: np.ndarray, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
        r0, r1 = raw[..., 0], raw[..., 1]
        m = (softplus(r0) + _EPS) * scale
        a = (softplus(r1) + _EPS) / np.sqrt(scale)
        r = 1.0 / a
        logp = (
            lgamma(z + r)
            - lgamma(z + 1.0)
            - lgamma(r)
            + r * (np.log(r) - np.log(r + m))
            + z * (np.log(m) - np.log(r + m))
        )
        dm = (z + r) / (r + m) - z / m  # d nll / d m
        dlogp_dr = digamma(z + r) - digamma(r) + np.log(r) - np.log(r + m) + (m - z) / (r + m)
        da = dlogp_dr / (a * a)  # d nll / d a  (dr/da = -1/a^2)
        grad = np.empty_like(raw)
        grad[..., 0] = dm * scale * sigmoid(r0)
        grad[..., 1] = da / np.sqrt(scale) * sigmoid(r1)
        return -logp, grad

    def sample(self, raw: np.ndarray, scale: Scale, rng: np.random.Generator) -> np.ndarray:
        m = (softplus(raw[..., 0]) + _EPS) * scale
        a = (softplus(raw[..., 1]) + _EPS) / np.sqrt(scale)
        r = 1.0 / a
        return rng.poisson(rng.gamma(r, m / r)).astype("float64")

    def mean(self, raw: np.ndarray, scale: Scale) -> np.ndarray:
        return (softplus(raw[..., 0]) + _EPS) * scale

    def check_targets(self, values: np.ndarray) -> None:
        obs = values[~np.isnan(values)]
        if (obs < 0).any():
            raise ValueError(
                "negative-binomial likelihood needs non-negative counts; the target has "
                f"{int((obs < 0).sum())} negative value(s) (use gaussian or student-T)"
            )


LIKELIHOODS: dict[str, Likelihood] = {lk.name: lk for lk in (Gaussian(), StudentT(), NegativeBinomial())}
SAGEMAKER_LIKELIHOODS = ("gaussian", "beta", "negative-binomial", "student-T", "deterministic-L1")


def get_likelihood(name: str) -> Likelihood:
    """The likelihood called ``name``; ``ValueError`` for names SageMaker has but this twin does not."""
    if name in LIKELIHOODS:
        return LIKELIHOODS[name]
    if name in SAGEMAKER_LIKELIHOODS:
        raise ValueError(
            f"likelihood {name!r} is accepted by SageMaker DeepAR but not implemented by the "
            f"local twin; use one of {', '.join(LIKELIHOODS)}"
        )
    raise ValueError(f"unknown likelihood {name!r}; SageMaker DeepAR accepts {', '.join(SAGEMAKER_LIKELIHOODS)}")
