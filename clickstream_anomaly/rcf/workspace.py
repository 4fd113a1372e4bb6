"""Scratch arrays of the kernels: allocated once per call of the batch kernels, and once per forest for
the kernel called once per point (:func:`point_workspace`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import jit


class Workspace(NamedTuple):
    """Scratch space for walks over trees of ``S`` slots in ``D`` dimensions.

    Attributes
    ----------
    lo, hi, lo2, hi2 : ndarray of shape (D,), float64
        Two scratch boxes (corners).
    tree_high, tree_low : ndarray of shape (D,), float64
        One tree's DiVector while it is accumulated.
    path : ndarray of shape (S + 1,), int64
        The internal nodes from the root to a leaf.
    stack : ndarray of shape (2 S + 2,), int64
        A traversal stack.
    query : ndarray of shape (D,), float64
        The shingle being scored and inserted (used by ``executor.point_step`` only).
    """

    lo: np.ndarray
    hi: np.ndarray
    lo2: np.ndarray
    hi2: np.ndarray
    tree_high: np.ndarray
    tree_low: np.ndarray
    path: np.ndarray
    stack: np.ndarray
    query: np.ndarray


@jit(inline=True)
def new_workspace(dim: int, slots: int) -> Workspace:
    """A :class:`Workspace` for ``dim`` dimensions and trees of ``slots`` slots."""
    return Workspace(
        np.empty(dim),
        np.empty(dim),
        np.empty(dim),
        np.empty(dim),
        np.empty(dim),
        np.empty(dim),
        np.empty(slots + 1, dtype=np.int64),
        np.empty(2 * slots + 2, dtype=np.int64),
        np.empty(dim),
    )


def point_workspace(dim: int, slots: int) -> tuple[np.ndarray, ...]:
    """A :class:`Workspace`'s arrays as a plain tuple, kept from one call to the next for the kernel called
    once per point (numba types a plain tuple faster than a named tuple, see ``arrays.forest_args``)."""
    vectors = tuple(np.zeros(dim) for _ in range(6))
    return (*vectors, np.zeros(slots + 1, dtype=np.int64), np.zeros(2 * slots + 2, dtype=np.int64), np.zeros(dim))
