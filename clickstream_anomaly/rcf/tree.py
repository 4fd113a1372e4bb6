"""Random cut trees (AWS ``RandomCutTree``): insert and delete points by random cuts over bounding boxes.

A cut is a dimension and a value. The cut of a box picks dimension ``i`` with probability proportional
to its range and the value uniformly in that range, in float32 as AWS's default ``FLOAT_32`` precision.
Insertion follows the AWS library: walk down from the root; at each node draw a cut of the node's box
merged with the new point; if it separates the point from the box, a new node with that cut takes the
node's place (the new leaf on one side, the old subtree on the other); otherwise follow the node's own
cut. An equal point increments the leaf's multiplicity. Deletion replaces the leaf's parent by its
sibling and shrinks the cached boxes above.
"""

from __future__ import annotations

import numpy as np

from ._jit import f64, jit
from .boxes import BoxCache, cached_depth, node_box, subtree_box
from .nodes import NodeStore, pop_internal, pop_leaf, push_internal, push_leaf, replace_child
from .rng import uniform
from .workspace import Workspace


@jit()
def random_cut(lo: np.ndarray, hi: np.ndarray, u: float) -> tuple[int, float]:
    """Cut ``(dimension, value)`` of the box ``[lo, hi]`` (shape (D,)) for the uniform draw ``u``: the
    dimension chosen proportionally to its range, the value uniform in ``[lo, hi)`` of that dimension."""
    d = lo.shape[0]
    total = 0.0
    for i in range(d):
        total += hi[i] - lo[i]
    r = u * total
    last = -1
    for i in range(d):
        rng = hi[i] - lo[i]
        if rng > 0.0:
            last = i
            if r < rng:
                # values are float32 (AWS FLOAT_32 precision); keep the cut in [lo, hi) after rounding
                c = f64(np.float32(lo[i] + r))
                return i, (lo[i] if c >= hi[i] or c < lo[i] else c)
            r -= rng
    # rounding fallback: last dimension with positive range
    return last, lo[last]


@jit(inline=True)
def separates(x: float, c: float, lo: float, hi: float) -> bool:
    """Whether the cut value ``c`` puts ``x`` on one side and the range ``[lo, hi]`` on the other."""
    return (x <= c and c < lo) or (x > c and c >= hi)


@jit(inline=True)
def same_point(points: np.ndarray, p: int, q: int) -> bool:
    """Whether store points ``p`` and ``q`` are equal."""
    for i in range(points.shape[1]):  # noqa: SIM110 - a loop, not a generator, compiles in numba
        if f64(points[p, i]) != f64(points[q, i]):
            return False
    return True


@jit(inline=True)
def pair_box(points: np.ndarray, q: int, p: int, lo: np.ndarray, hi: np.ndarray) -> None:
    """The box of store points ``q`` and ``p`` into ``lo``/``hi``."""
    for i in range(points.shape[1]):
        a = f64(points[q, i])
        b = f64(points[p, i])
        lo[i] = a if a < b else b
        hi[i] = b if a < b else a


@jit(inline=True)
def store_box(boxes: BoxCache, t: int, v: int, lo: np.ndarray, hi: np.ndarray) -> None:
    """Write ``[lo, hi]`` as the cached box of internal slot ``v`` of tree ``t`` when it has one
    (``v < K``)."""
    if v < boxes.lo.shape[1]:
        for i in range(lo.shape[0]):
            boxes.lo[t, v, i] = lo[i]
            boxes.hi[t, v, i] = hi[i]


@jit()
def move_to_cached_slot(
    nodes: NodeStore, boxes: BoxCache, t: int, parent: int, v: int, lo: np.ndarray, hi: np.ndarray
) -> int:
    """Move internal node ``v`` of box ``[lo, hi]`` into a free cached slot; returns the new slot."""
    w = pop_internal(nodes, t, True)
    nodes.left[t, w] = nodes.left[t, v]
    nodes.right[t, w] = nodes.right[t, v]
    nodes.cut_dim[t, w] = nodes.cut_dim[t, v]
    nodes.cut_value[t, w] = nodes.cut_value[t, v]
    store_box(boxes, t, w, lo, hi)
    replace_child(nodes, t, parent, v, w)
    push_internal(nodes, t, v, boxes.lo.shape[1])
    return w


@jit(inline=True)
def new_leaf(nodes: NodeStore, t: int, p: int) -> int:
    """A new leaf of tree ``t`` holding store point ``p`` once; returns its node reference."""
    lf = pop_leaf(nodes, t)
    nodes.leaf_point[t, lf] = p
    nodes.leaf_mass[t, lf] = 1
    return nodes.leaf_point.shape[1] + lf


@jit()
def splice(
    nodes: NodeStore, points: np.ndarray, t: int, parent: int, node: int, p: int, cut: tuple[int, float], top: bool
) -> int:
    """A new internal node with ``cut`` (dimension, value) takes ``node``'s place under ``parent``, with a new
    leaf of store point ``p`` on one side and ``node`` on the other; returns its slot, a cached one preferred
    when ``top`` (near the root). The caller stores its box (:func:`store_box`)."""
    dim, c = cut
    n = pop_internal(nodes, t, top)
    lf = new_leaf(nodes, t, p)
    nodes.cut_dim[t, n] = dim
    nodes.cut_value[t, n] = c
    below = f64(points[p, dim]) <= c
    nodes.left[t, n] = lf if below else node
    nodes.right[t, n] = node if below else lf
    replace_child(nodes, t, parent, node, n)
    return n


@jit()
def tree_insert(
    nodes: NodeStore, boxes: BoxCache, points: np.ndarray, rng: np.ndarray, t: int, p: int, work: Workspace
) -> int:
    """Insert store point ``p`` into tree ``t``; returns the store index the tree now uses for it (an
    existing equal point's index when the point is a duplicate). ``work`` is a :class:`.Workspace`."""
    left, right, cut_dim, cut_value, leaf_point = (
        nodes.left,
        nodes.right,
        nodes.cut_dim,
        nodes.cut_value,
        nodes.leaf_point,
    )
    box_lo, box_hi = boxes.lo, boxes.hi
    S = leaf_point.shape[1]
    K = box_lo.shape[1]
    d = points.shape[1]
    top_depth = cached_depth(K)
    mlo, mhi = work.lo, work.hi  # the node's box merged with the point
    blo, bhi = work.lo2, work.hi2  # the node's box
    nodes.mass[t] += 1
    node = nodes.root[t]
    if node < 0:
        nodes.root[t] = new_leaf(nodes, t, p)
        return p
    parent = -1
    depth = 0
    while node < S:
        if node < K:
            for i in range(d):
                blo[i] = f64(box_lo[t, node, i])
                bhi[i] = f64(box_hi[t, node, i])
        else:
            subtree_box(nodes, boxes, points, t, node, blo, bhi, work.stack)
            if depth < top_depth and nodes.free_cached[t] >= 0:
                node = move_to_cached_slot(nodes, boxes, t, parent, node, blo, bhi)
        for i in range(d):
            x = f64(points[p, i])
            mlo[i] = x if x < blo[i] else blo[i]
            mhi[i] = x if x > bhi[i] else bhi[i]
        cut = random_cut(mlo, mhi, uniform(rng, t))
        dim, c = cut
        if separates(f64(points[p, dim]), c, blo[dim], bhi[dim]):
            spliced = splice(nodes, points, t, parent, node, p, cut, depth < top_depth)
            store_box(boxes, t, spliced, mlo, mhi)
            return p
        if node < K:
            for i in range(d):
                box_lo[t, node, i] = mlo[i]
                box_hi[t, node, i] = mhi[i]
        parent = node
        depth += 1
        node = left[t, node] if f64(points[p, cut_dim[t, node]]) <= f64(cut_value[t, node]) else right[t, node]
    q = leaf_point[t, node - S]
    if same_point(points, q, p):
        nodes.leaf_mass[t, node - S] += 1
        return q
    pair_box(points, q, p, mlo, mhi)
    cut = random_cut(mlo, mhi, uniform(rng, t))
    spliced = splice(nodes, points, t, parent, node, p, cut, depth < top_depth)
    store_box(boxes, t, spliced, mlo, mhi)
    return p


@jit()
def shrink_cached_boxes(
    nodes: NodeStore, boxes: BoxCache, points: np.ndarray, t: int, path: np.ndarray, depth: int, work: Workspace
) -> None:
    """After a deletion below ``path[:depth]``, recompute the cached boxes on that path from the bottom;
    stop at the first cached box that is unchanged."""
    left, right = nodes.left, nodes.right
    box_lo, box_hi = boxes.lo, boxes.hi
    llo, lhi, rlo, rhi = work.lo, work.hi, work.lo2, work.hi2
    for k in range(depth - 1, -1, -1):
        a = path[k]
        if a >= box_lo.shape[1]:
            continue
        node_box(nodes, boxes, points, t, left[t, a], llo, lhi, work.stack)
        node_box(nodes, boxes, points, t, right[t, a], rlo, rhi, work.stack)
        changed = False
        for i in range(points.shape[1]):
            lo = llo[i] if llo[i] < rlo[i] else rlo[i]
            hi = lhi[i] if lhi[i] > rhi[i] else rhi[i]
            if lo != f64(box_lo[t, a, i]) or hi != f64(box_hi[t, a, i]):
                changed = True
                box_lo[t, a, i] = lo
                box_hi[t, a, i] = hi
        if not changed:
            break


@jit()
def tree_delete(nodes: NodeStore, boxes: BoxCache, points: np.ndarray, t: int, p: int, work: Workspace) -> None:
    """Remove one copy of store point ``p`` from tree ``t`` (it must be in the tree)."""
    left, right, cut_dim, cut_value = nodes.left, nodes.right, nodes.cut_dim, nodes.cut_value
    S = left.shape[1]
    path = work.path
    nodes.mass[t] -= 1
    node = nodes.root[t]
    depth = 0
    while node < S:
        path[depth] = node
        depth += 1
        node = left[t, node] if f64(points[p, cut_dim[t, node]]) <= f64(cut_value[t, node]) else right[t, node]
    lf = node - S
    nodes.leaf_mass[t, lf] -= 1
    if nodes.leaf_mass[t, lf] > 0:
        return
    push_leaf(nodes, t, lf)
    if depth == 0:
        nodes.root[t] = -1
        return
    par = path[depth - 1]
    sib = right[t, par] if left[t, par] == node else left[t, par]
    push_internal(nodes, t, par, boxes.lo.shape[1])
    replace_child(nodes, t, path[depth - 2] if depth > 1 else -1, par, sib)
    if depth > 1:
        shrink_cached_boxes(nodes, boxes, points, t, path, depth - 1, work)
