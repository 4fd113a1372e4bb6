"""The point store (AWS ``PointStore``): each point once, shared by every tree and reference counted.

Trees and samplers hold integer indices into it. A slot is free when no tree holds its point; free slots
form a stack. A streaming forest never needs more than ``n_trees * sample_size + 1`` slots (every
sample plus the arriving point); the store starts smaller and grows by a quarter when needed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import jit


class PointStore(NamedTuple):
    """The stored points; ``C`` is the capacity, ``I`` the index type (int16 or int32).

    Attributes
    ----------
    points : ndarray of shape (C, D), float32
        The coordinates.
    refs : ndarray of shape (C,), I
        How many tree samples hold each point (0 for a free slot).
    free : ndarray of shape (C,), I
        A stack of free slots; its first ``n_free[0]`` entries are valid, the top is last.
    n_free : ndarray of shape (1,), int64
        The number of free slots.
    """

    points: np.ndarray
    refs: np.ndarray
    free: np.ndarray
    n_free: np.ndarray


def empty_store(capacity: int, dim: int, index: type[np.signedinteger]) -> PointStore:
    """A store of ``capacity`` free slots of ``dim`` coordinates that hands out slots 0, 1, 2, ..."""
    cap = int(capacity)
    return PointStore(
        points=np.zeros((cap, int(dim)), dtype=np.float32),
        refs=np.zeros(cap, dtype=index),
        free=np.arange(cap - 1, -1, -1, dtype=index),
        n_free=np.array([cap], dtype=np.int64),
    )


def with_free_slots(store: PointStore, n: int, max_live: int) -> PointStore:
    """``store``, grown (by a quarter, up to ``max_live`` slots) when needed so that ``n`` more points can
    arrive before the next call; existing slots and the order of the existing free stack are kept."""
    cap = store.points.shape[0]
    nf = int(store.n_free[0])
    live = cap - nf
    need = min(int(n), int(max_live) - live)
    if nf >= need:
        return store
    new_cap = min(int(max_live), max(live + need, cap + cap // 4))
    points = np.zeros((new_cap, store.points.shape[1]), dtype=np.float32)
    points[:cap] = store.points
    refs = np.zeros(new_cap, dtype=store.refs.dtype)
    refs[:cap] = store.refs
    free = np.zeros(new_cap, dtype=store.free.dtype)  # zeros, not np.empty: the saved state holds it all
    # new slots go below the existing free stack so that existing pops are unchanged
    added = np.arange(new_cap - 1, cap - 1, -1)
    free[: added.size] = added
    free[added.size : added.size + nf] = store.free[:nf]
    return PointStore(points=points, refs=refs, free=free, n_free=np.array([nf + added.size], dtype=np.int64))


@jit(inline=True)
def add_point(store: PointStore, q: np.ndarray) -> int:
    """Copy ``q`` (shape (D,)) into a free slot (one must exist) with no references; returns its index."""
    store.n_free[0] -= 1
    p = store.free[store.n_free[0]]
    for i in range(q.shape[0]):
        store.points[p, i] = q[i]
    store.refs[p] = 0
    return p


@jit(inline=True)
def add_ref(store: PointStore, p: int) -> None:
    """One more tree sample holds point ``p``."""
    store.refs[p] += 1


@jit(inline=True)
def release_if_unused(store: PointStore, p: int) -> None:
    """Free slot ``p`` when no tree sample holds its point."""
    if store.refs[p] == 0:
        store.free[store.n_free[0]] = p
        store.n_free[0] += 1


@jit(inline=True)
def drop_ref(store: PointStore, p: int) -> None:
    """One tree sample fewer holds point ``p``; its slot is freed at zero."""
    store.refs[p] -= 1
    release_if_unused(store, p)
