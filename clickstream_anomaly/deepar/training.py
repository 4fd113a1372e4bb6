"""The training loop and nothing else: Adam, epochs of shuffled window batches, gradient clipping,
early stopping on a held-out loss (keeping the best parameters)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .network import Params

LossFn = Callable[[Params, np.ndarray, np.random.Generator], tuple[float, Params]]


class Adam:
    """Adam (Kingma and Ba) on a dict of arrays, updated in place."""

    def __init__(
        self, params: Params, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def update(self, params: Params, grads: Params) -> None:
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for k, g in grads.items():
            m, v = self.m[k], self.v[k]
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            params[k] -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def clip_by_global_norm(grads: Params, max_norm: float) -> float:
    """Scale ``grads`` in place so their global L2 norm is at most ``max_norm``; returns the norm before."""
    norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
    if norm > max_norm > 0:
        for g in grads.values():
            g *= max_norm / norm
    return norm


@dataclass
class TrainResult:
    params: Params
    train_loss: list[float] = field(default_factory=list)  # mean loss per epoch
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    epochs_run: int = 0


def train(  # noqa: PLR0913  (the training options are keyword-only)
    params: Params,
    loss_fn: LossFn,
    n_windows: int,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.Generator,
    val_fn: Callable[[Params], float] | None = None,
    patience: int | None = None,
    clip: float = 10.0,
    on_epoch: Callable[[int, float, float | None], None] | None = None,
) -> TrainResult:
    """Train ``params`` (in place, then the best kept) for ``epochs`` passes over ``n_windows`` windows.

    ``loss_fn(params, window_ids, rng)`` returns the batch's mean loss and gradients. One epoch visits
    every window once in a random order, in batches of ``batch_size``. With ``patience`` and
    ``val_fn``, training stops after ``patience`` epochs without a lower validation loss and the
    parameters of the best epoch are returned. ``on_epoch(epoch, train_loss, val_loss)`` (1-based epoch;
    ``val_loss`` None without ``val_fn``) is called after each epoch, e.g. to drive a progress bar.
    """
    opt = Adam(params, learning_rate)
    result = TrainResult(params)
    best = np.inf
    best_params = None
    stale = 0
    for epoch in range(epochs):
        order = rng.permutation(n_windows)
        losses = []
        for lo in range(0, n_windows, batch_size):
            loss, grads = loss_fn(params, order[lo : lo + batch_size], rng)
            clip_by_global_norm(grads, clip)
            opt.update(params, grads)
            losses.append(loss)
        result.train_loss.append(float(np.mean(losses)))
        result.epochs_run = epoch + 1
        val = float(val_fn(params)) if val_fn is not None else None
        if on_epoch is not None:
            on_epoch(epoch + 1, result.train_loss[-1], val)
        if val is not None:
            result.val_loss.append(val)
            if val < best:
                best, stale, result.best_epoch = val, 0, epoch
                best_params = {k: v.copy() for k, v in params.items()}
            else:
                stale += 1
                if patience is not None and stale >= patience:
                    break
    if best_params is not None and patience is not None:
        params.update(best_params)
    return result
