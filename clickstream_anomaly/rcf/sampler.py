"""The samplers: each tree's time-decayed weighted reservoir (AWS ``CompactSampler``).

The point arriving as number ``seq`` gets the weight ``-lam * seq + log(-log u)`` (``u`` uniform in
(0, 1) from the tree's generator) and each tree keeps the ``S`` points of smallest weight in a max-heap,
so a point lives about ``1 / lam`` arrivals on average and older points tend to leave first. An update
has two steps, as AWS ``IStreamSampler``: :func:`accept` decides (and whether the heap's root, the point
of largest weight, leaves to make room), then :func:`add` stores the accepted point; the tree obeys in
between (the evicted point is deleted from it, the accepted one inserted). Weights are float32, as AWS
keeps them, stored relative to the arrival ``weight_base`` and re-based every ``REBASE_SPAN / lam``
arrivals, so that float32 keeps them exact to about 1e-5 however long the stream runs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._jit import f64, jit

#: sampler weights are re-based once ``lam * (arrivals since the base)`` exceeds this
REBASE_SPAN = 64.0
#: :func:`accept`'s answers: take the point, take it in place of the heap's root, or not at all
KEEP, EVICT, REJECT = 0, 1, 2


class Sampler(NamedTuple):
    """The samplers of ``T`` trees of capacity ``S``; ``I`` is the index type (int16 or int32).

    Attributes
    ----------
    weight : ndarray of shape (T, S), float32
        Each tree's max-heap of weights (relative to ``weight_base``); the root leaves first.
    point : ndarray of shape (T, S), I
        The point-store index held with each weight.
    size : ndarray of shape (T,), int64
        How many points each sampler holds.
    seen : ndarray of shape (1,), int64
        Points offered to the samplers so far (the last arrival number).
    weight_base : ndarray of shape (1,), int64
        The arrival number the weights are relative to.
    """

    weight: np.ndarray
    point: np.ndarray
    size: np.ndarray
    seen: np.ndarray
    weight_base: np.ndarray


def empty_sampler(n_trees: int, capacity: int, index: type[np.signedinteger]) -> Sampler:
    """Empty samplers of ``capacity`` points for ``n_trees`` trees."""
    T, S = int(n_trees), int(capacity)
    return Sampler(
        weight=np.zeros((T, S), dtype=np.float32),
        point=np.full((T, S), -1, dtype=index),
        size=np.zeros(T, dtype=np.int64),
        seen=np.zeros(1, dtype=np.int64),
        weight_base=np.zeros(1, dtype=np.int64),
    )


@jit(inline=True)
def arrival_weight(lam: float, seq: int, base: int, u: float) -> float:
    """The float32 weight (as float64) of arrival ``seq`` drawn with ``u``, relative to arrival ``base``."""
    return f64(np.float32(-lam * (seq - base) + math.log(-math.log(u))))


@jit(inline=True)
def accept(size: int, capacity: int, weight: float, max_weight: float) -> int:
    """What a sampler holding ``size`` of ``capacity`` points, the largest weight ``max_weight``, does with
    a point of ``weight``: :data:`KEEP` (not full yet), :data:`REJECT`, or :data:`EVICT` (the root)."""
    if size < capacity:
        return KEEP
    return REJECT if weight >= max_weight else EVICT


@jit(inline=True)
def add(sampler: Sampler, t: int, weight: float, p: int) -> None:
    """Store accepted point ``p`` of ``weight`` in tree ``t``'s heap: sifted up from the end while the
    sampler is not full, else in place of the evicted root and sifted down."""
    heap = sampler.weight
    held = sampler.point
    S = heap.shape[1]
    size = sampler.size[t]
    if size < S:
        j = size
        while j > 0:
            par = (j - 1) // 2
            if f64(heap[t, par]) >= weight:
                break
            heap[t, j] = heap[t, par]
            held[t, j] = held[t, par]
            j = par
        sampler.size[t] = size + 1
    else:
        j = 0
        while True:
            c = 2 * j + 1
            if c >= S:
                break
            if c + 1 < S and heap[t, c + 1] > heap[t, c]:
                c += 1
            if f64(heap[t, c]) <= weight:
                break
            heap[t, j] = heap[t, c]
            held[t, j] = held[t, c]
            j = c
    heap[t, j] = weight
    held[t, j] = p


@jit()
def rebase_weights(sampler: Sampler, lam: float) -> None:
    """Move the weights' base to the current arrival (order-preserving, float32)."""
    shift = lam * (sampler.seen[0] - sampler.weight_base[0])
    for t in range(sampler.size.shape[0]):
        for j in range(sampler.size[t]):
            sampler.weight[t, j] = f64(sampler.weight[t, j]) + shift
    sampler.weight_base[0] = sampler.seen[0]
