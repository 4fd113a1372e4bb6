"""Bounding boxes: the partial box cache of each tree (AWS ``boundingBoxCacheFraction``) and the boxes
of the other nodes, computed on demand from their subtree.

Internal slots ``0 .. K-1`` of every tree keep their box; any other node's box is the union of its
children's. Nodes are placed so that the cached slots go to the top of the tree, where boxes are large
and used by every walk: a node created or walked through at depth ``< cached_depth(K)`` takes (or moves
to) a cached slot when one is free; deeper nodes prefer uncached slots. Which slot a node uses never
changes a result, only the time to get its box. Boxes are float32 (exact copies of the points' float32
coordinates); arithmetic on them is float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._jit import f64, jit
from .nodes import NodeStore

#: default share of internal nodes whose bounding box is cached (AWS ``boundingBoxCacheFraction``)
DEFAULT_BOX_CACHE_FRACTION = 0.3


class BoxCache(NamedTuple):
    """The cached boxes of internal slots ``0 .. K-1`` of ``T`` trees over ``D`` dimensions.

    Attributes
    ----------
    lo, hi : ndarray of shape (T, K, D), float32
        Each cached box's minimum and maximum corner.
    """

    lo: np.ndarray
    hi: np.ndarray


def cached_slots(sample_size: int, fraction: float) -> int:
    """Number of internal-node slots with a cached box for a cache ``fraction`` in [0, 1]."""
    return min(int(sample_size), round(float(fraction) * sample_size))


def empty_boxes(n_trees: int, cached: int, dim: int) -> BoxCache:
    """A zeroed box cache of shape (n_trees, cached, dim)."""
    shape = (int(n_trees), int(cached), int(dim))
    return BoxCache(lo=np.zeros(shape, dtype=np.float32), hi=np.zeros(shape, dtype=np.float32))


@jit(inline=True)
def cached_depth(k: int) -> int:
    """Depth above which nodes get the ``k`` cached box slots first: a full binary tree of this depth
    has about ``k`` internal nodes."""
    if k <= 0:
        return 0
    return int(math.log2(k + 1.0))


@jit()
def subtree_box(
    nodes: NodeStore,
    boxes: BoxCache,
    points: np.ndarray,
    t: int,
    v: int,
    lo: np.ndarray,
    hi: np.ndarray,
    stack: np.ndarray,
) -> None:
    """Box of the uncached internal node ``v`` of tree ``t`` into ``lo``/``hi`` (shape (D,)): the union over
    its subtree down to cached boxes and leaves. ``points`` are the store's; ``stack`` is an int workspace
    of at least ``2 S + 2`` entries."""
    left, right, leaf_point, box_lo, box_hi = nodes.left, nodes.right, nodes.leaf_point, boxes.lo, boxes.hi
    S = leaf_point.shape[1]
    K = box_lo.shape[1]
    d = points.shape[1]
    for i in range(d):
        lo[i] = np.inf
        hi[i] = -np.inf
    stack[0] = left[t, v]
    stack[1] = right[t, v]
    top = 2
    while top > 0:
        top -= 1
        u = stack[top]
        if u >= S:
            p = leaf_point[t, u - S]
            for i in range(d):
                x = f64(points[p, i])
                if x < lo[i]:
                    lo[i] = x
                if x > hi[i]:
                    hi[i] = x
        elif u < K:
            for i in range(d):
                a = f64(box_lo[t, u, i])
                b = f64(box_hi[t, u, i])
                if a < lo[i]:
                    lo[i] = a
                if b > hi[i]:
                    hi[i] = b
        else:
            stack[top] = left[t, u]
            stack[top + 1] = right[t, u]
            top += 2


@jit()
def node_box(
    nodes: NodeStore,
    boxes: BoxCache,
    points: np.ndarray,
    t: int,
    v: int,
    lo: np.ndarray,
    hi: np.ndarray,
    stack: np.ndarray,
) -> None:
    """Bounding box of node ``v`` of tree ``t`` into ``lo``/``hi`` (arguments as :func:`subtree_box`): a
    leaf's point, a cached box, or :func:`subtree_box`."""
    leaf_point, box_lo, box_hi = nodes.leaf_point, boxes.lo, boxes.hi
    S = leaf_point.shape[1]
    d = points.shape[1]
    if v >= S:
        p = leaf_point[t, v - S]
        for i in range(d):
            lo[i] = f64(points[p, i])
            hi[i] = lo[i]
    elif v < box_lo.shape[1]:
        for i in range(d):
            lo[i] = f64(box_lo[t, v, i])
            hi[i] = f64(box_hi[t, v, i])
    else:
        subtree_box(nodes, boxes, points, t, v, lo, hi, stack)


@jit()
def preorder(nodes: NodeStore, t: int, order: np.ndarray, stack: np.ndarray) -> int:
    """The internal nodes of tree ``t`` in pre-order (parents before children) into ``order``; returns
    how many there are. ``stack`` is an int workspace of at least ``2 S + 2`` entries."""
    S = nodes.leaf_point.shape[1]
    root = nodes.root[t]
    if root < 0 or root >= S:
        return 0
    n = 0
    stack[0] = root
    top = 1
    while top > 0:
        top -= 1
        v = stack[top]
        order[n] = v
        n += 1
        for c in (nodes.left[t, v], nodes.right[t, v]):
            if c < S:
                stack[top] = c
                top += 1
    return n


@jit(allocates=True)
def all_boxes(nodes: NodeStore, boxes: BoxCache, points: np.ndarray, out: np.ndarray) -> None:
    """Every internal node's box into ``out`` of shape (T, S, 2, D), float64 (``out[t, v, 0]`` the
    minimum corner, ``out[t, v, 1]`` the maximum), children before parents, one pass per tree; free
    slots are left as they are."""
    S = nodes.leaf_point.shape[1]
    K = boxes.lo.shape[1]
    d = points.shape[1]
    order = np.empty(S, dtype=np.int64)
    stack = np.empty(2 * S + 2, dtype=np.int64)
    for t in range(nodes.root.shape[0]):
        for m in range(preorder(nodes, t, order, stack) - 1, -1, -1):
            v = order[m]
            if v < K:
                for i in range(d):
                    out[t, v, 0, i] = f64(boxes.lo[t, v, i])
                    out[t, v, 1, i] = f64(boxes.hi[t, v, i])
                continue
            for i in range(d):
                out[t, v, 0, i] = np.inf
                out[t, v, 1, i] = -np.inf
            for c in (nodes.left[t, v], nodes.right[t, v]):
                for i in range(d):
                    if c >= S:
                        lo = f64(points[nodes.leaf_point[t, c - S], i])
                        hi = lo
                    else:
                        lo = out[t, c, 0, i]
                        hi = out[t, c, 1, i]
                    if lo < out[t, v, 0, i]:
                        out[t, v, 0, i] = lo
                    if hi > out[t, v, 1, i]:
                        out[t, v, 1, i] = hi
