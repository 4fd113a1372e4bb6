"""Scoring walks: the AWS anomaly score and its DiVector attribution (AWS ``AnomalyScoreVisitor``,
``AnomalyAttributionVisitor``), one point at a time (:func:`forest_visit`) or for a batch of points over
read-only tables (:func:`batch_score`).

Each tree walks from the root to the leaf the query ``q`` would reach, scores that leaf
(:func:`leaf_score`), then goes back up: at an ancestor of depth ``k`` whose box, merged with ``q``,
has range sum ``merged``, the separation probability is ``p = gap / merged`` (``gap`` is how far the box
grows when ``q`` is merged in, :func:`gap`) and the score becomes ``p / (k + 1) + (1 - p) * score``
(:func:`node_score`). The walk stops at the first box that holds ``q`` (``p = 0`` there and above). The
DiVector follows the same recursion with ``p`` split per dimension and side, so its total is the score.
A tree's score is multiplied by ``log2(mass + 1)``; the forest's is the mean over trees. Higher is more
anomalous: inliers score about 0.7-1, clear anomalies 1.5-3 and more.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._jit import f64, jit, prange
from .boxes import BoxCache, all_boxes, node_box
from .nodes import NodeStore
from .workspace import Workspace


@jit(inline=True)
def leaf_score(depth: int, leaf_mass: int, tree_mass: int, same: bool) -> float:
    """Score at the leaf reached at ``depth``: ``damp / (depth + log2(m + 1))`` with
    ``damp = 1 - m / (2 * tree_mass)`` when the query equals the leaf's point (multiplicity ``m``),
    else ``1 / (depth + 1)``."""
    if same:
        return (1.0 - leaf_mass / (2.0 * tree_mass)) / (depth + math.log2(leaf_mass + 1.0))
    return 1.0 / (depth + 1.0)


@jit(inline=True)
def node_score(value: float, separated: float, prob: float, inv_depth: float) -> float:
    """``value`` updated at an ancestor with separation probability ``prob`` and ``inv_depth = 1 / (k + 1)``:
    ``separated * inv_depth + (1 - prob) * value`` (``separated`` is ``prob`` for the score, one
    dimension's and side's share of it for the DiVector)."""
    return separated * inv_depth + (1.0 - prob) * value


@jit(inline=True)
def gap(x: float, lo: float, hi: float) -> float:
    """How far ``x`` lies outside ``[lo, hi]`` (0 inside); branch-free, as ``lo <= hi``."""
    return max(x - hi, 0.0) + max(lo - x, 0.0)


# ---------------------------------------------------------------------- one point at a time
@jit(inline=True)
def leaf_start(
    nodes: NodeStore,
    points: np.ndarray,
    q: np.ndarray,
    t: int,
    leaf: int,
    depth: int,
    want_attr: bool,
    work: Workspace,
) -> float:
    """Score of leaf slot ``leaf`` of tree ``t`` reached at ``depth``; its point's box goes into
    ``work.lo``/``work.hi`` and, when ``want_attr``, the leaf's DiVector into
    ``work.tree_high``/``work.tree_low``."""
    lo, hi, th, tl = work.lo, work.hi, work.tree_high, work.tree_low
    d = q.shape[0]
    p = nodes.leaf_point[t, leaf]
    same = True
    sum_gap = 0.0
    for i in range(d):
        lo[i] = f64(points[p, i])
        hi[i] = lo[i]
        g = q[i] - lo[i]
        same = same and g == 0.0
        sum_gap += abs(g)
    score = leaf_score(depth, nodes.leaf_mass[t, leaf], nodes.mass[t], same)
    if want_attr:
        share = score / (2.0 * d)
        for i in range(d):
            g = q[i] - lo[i]
            th[i] = share if same else (score * (g / sum_gap) if g > 0.0 else 0.0)
            tl[i] = share if same else (score * (-g / sum_gap) if g < 0.0 else 0.0)
    return score


@jit(inline=True)
def walk_up(
    nodes: NodeStore,
    boxes: BoxCache,
    points: np.ndarray,
    q: np.ndarray,
    t: int,
    reached: tuple[int, int],
    want_attr: bool,
    work: Workspace,
) -> float:
    """The unnormalised score of ``q`` in tree ``t`` from the leaf ``reached`` = ``(leaf reference, depth)``
    that :func:`descend` found through ``work.path[:depth]``: the leaf's score (:func:`leaf_start`),
    accumulated back up to the first box holding ``q``; leaves the DiVector in
    ``work.tree_high``/``work.tree_low`` when ``want_attr``. The box of each ancestor is its cached box, or
    the box below on the path merged with the sibling's."""
    left, right, leaf_point, box_lo, box_hi = nodes.left, nodes.right, nodes.leaf_point, boxes.lo, boxes.hi
    S = left.shape[1]
    K = box_lo.shape[1]
    d = q.shape[0]
    path, clo, chi, slo, shi, th, tl = work.path, work.lo, work.hi, work.lo2, work.hi2, work.tree_high, work.tree_low
    leaf_node, depth = reached
    score = leaf_start(nodes, points, q, t, leaf_node - S, depth, want_attr, work)
    child = leaf_node
    for k in range(depth - 1, -1, -1):
        a = path[k]
        if a < K:
            for i in range(d):
                clo[i] = f64(box_lo[t, a, i])
                chi[i] = f64(box_hi[t, a, i])
        else:
            sib = right[t, a] if left[t, a] == child else left[t, a]
            if sib >= S:
                p = leaf_point[t, sib - S]
                for i in range(d):
                    x = f64(points[p, i])
                    clo[i] = min(clo[i], x)
                    chi[i] = max(chi[i], x)
            else:
                node_box(nodes, boxes, points, t, sib, slo, shi, work.stack)
                for i in range(d):
                    clo[i] = min(clo[i], slo[i])
                    chi[i] = max(chi[i], shi[i])
        child = a
        sum_gap = 0.0
        sum_range = 0.0
        for i in range(d):
            sum_range += chi[i] - clo[i]
            sum_gap += gap(q[i], clo[i], chi[i])
        if sum_gap == 0.0:
            break
        merged = sum_range + sum_gap
        prob = sum_gap / merged
        inv_depth = 1.0 / (k + 1.0)
        score = node_score(score, prob, prob, inv_depth)
        if want_attr:
            for i in range(d):
                x = q[i]
                th[i] = node_score(th[i], (x - chi[i]) / merged if x > chi[i] else 0.0, prob, inv_depth)
                tl[i] = node_score(tl[i], (clo[i] - x) / merged if x < clo[i] else 0.0, prob, inv_depth)
    return score


@jit(inline=True)
def descend(nodes: NodeStore, t: int, q: np.ndarray, path: np.ndarray) -> tuple[int, int]:
    """Walk tree ``t`` (not empty) from the root to the leaf ``q`` would reach, recording the internal nodes
    in ``path``; returns ``(leaf reference, depth)``."""
    S = nodes.left.shape[1]
    node = nodes.root[t]
    depth = 0
    while node < S:
        path[depth] = node
        depth += 1
        go_left = q[nodes.cut_dim[t, node]] <= f64(nodes.cut_value[t, node])
        node = nodes.left[t, node] if go_left else nodes.right[t, node]
    return node, depth


@jit()
def forest_visit(
    nodes: NodeStore,
    boxes: BoxCache,
    points: np.ndarray,
    q: np.ndarray,
    want_attr: bool,
    high: np.ndarray,
    low: np.ndarray,
    work: Workspace,
) -> float:
    """Forest score of ``q`` (shape (D,)): the mean of the tree scores (each normalised by
    ``log2(mass + 1)``), higher is more anomalous; ``high``/``low`` (shape (D,), zeroed here) get the mean
    DiVector when ``want_attr``. Their total equals the score up to rounding."""
    d = q.shape[0]
    n_trees = nodes.root.shape[0]
    th, tl = work.tree_high, work.tree_low
    for i in range(d):
        high[i] = 0.0
        low[i] = 0.0
    total = 0.0
    for t in range(n_trees):
        if nodes.root[t] < 0:
            continue
        score = walk_up(nodes, boxes, points, q, t, descend(nodes, t, q, work.path), want_attr, work)
        norm = math.log2(nodes.mass[t] + 1.0)
        total += score * norm
        if want_attr:
            for i in range(d):
                high[i] += th[i] * norm
                low[i] += tl[i] * norm
    if want_attr:
        for i in range(d):
            high[i] /= n_trees
            low[i] /= n_trees
    return total / n_trees


# ---------------------------------------------------------------------- batches
_GROUP = 8  # rows descended together in batch scoring
_BLOCK = 2048  # rows per parallel block


class ScoreTables(NamedTuple):
    """Read-only float64/int64 copies of ``T`` trees of ``S`` slots over ``D`` dimensions for
    :func:`batch_score`; about ``T * S * (40 + 24 D)`` bytes.

    Attributes
    ----------
    child : ndarray of shape (T, 2 S), int64
        Node ``v``'s left child at ``2 v``, its right child at ``2 v + 1``.
    cut_dim : ndarray of shape (T, S), int64
    cut_value : ndarray of shape (T, S), float64
    box : ndarray of shape (T, S, 2, D), float64
        Every internal node's box, cached or not (``box[t, v, 0]`` the minimum corner).
    range_sum : ndarray of shape (T, S), float64
        Each box's range sum, added dimension by dimension from 0 as :func:`walk_up` does.
    leaf_point : ndarray of shape (T, S, D), float64
        Each leaf slot's point.
    leaf_mass : ndarray of shape (T, S), int64
        Each leaf slot's multiplicity.
    root, mass : ndarray of shape (T,), int64
        Each tree's root and number of points.
    """

    child: np.ndarray
    cut_dim: np.ndarray
    cut_value: np.ndarray
    box: np.ndarray
    range_sum: np.ndarray
    leaf_point: np.ndarray
    leaf_mass: np.ndarray
    root: np.ndarray
    mass: np.ndarray


class GroupWork(NamedTuple):
    """Scratch space of :func:`score_block`: ``_GROUP`` rows descended together in trees of ``S`` slots.

    Attributes
    ----------
    at : ndarray of shape (_GROUP,), int64
        Each row's node on the way down, then its leaf.
    depths : ndarray of shape (_GROUP,), int64
        Each row's depth.
    paths : ndarray of shape (_GROUP, S + 1), int64
        Each row's internal nodes from the root.
    """

    at: np.ndarray
    depths: np.ndarray
    paths: np.ndarray


def score_tables(nodes: NodeStore, boxes: BoxCache, points: np.ndarray) -> ScoreTables:
    """:class:`ScoreTables` of the trees of ``nodes``/``boxes`` (a slice of trees is fine)."""
    T, S = nodes.cut_value.shape
    child = np.stack([nodes.left, nodes.right], axis=-1).astype(np.int64).reshape(T, 2 * S)
    box = np.zeros((T, S, 2, points.shape[1]))
    all_boxes(nodes, boxes, points, box)
    range_sum = np.zeros((T, S))
    for i in range(points.shape[1]):
        range_sum += box[:, :, 1, i] - box[:, :, 0, i]
    return ScoreTables(
        child=child,
        cut_dim=nodes.cut_dim.astype(np.int64),
        cut_value=nodes.cut_value.astype(np.float64),
        box=box,
        range_sum=range_sum,
        leaf_point=points[nodes.leaf_point].astype(np.float64),
        leaf_mass=nodes.leaf_mass.astype(np.int64),
        root=nodes.root.astype(np.int64),
        mass=nodes.mass.astype(np.int64),
    )


@jit(inline=True)
def descend_group(
    X: np.ndarray,
    r0: int,
    n: int,
    child: np.ndarray,
    cut_dim: np.ndarray,
    cut_value: np.ndarray,
    root: int,
    work: GroupWork,
) -> None:
    """Descend rows ``r0 .. r0 + n - 1`` of ``X`` in the tree of root ``root`` together, interleaved level by
    level so that their independent memory loads overlap; their leaves go to ``work.at``, depths to
    ``work.depths``, paths to ``work.paths`` (``child``, ``cut_dim``, ``cut_value``: one tree's rows of the
    :class:`ScoreTables`)."""
    at, depths, paths = work.at, work.depths, work.paths
    S = cut_value.shape[0]
    for g in range(n):
        at[g] = root
        depths[g] = 0
    active = True
    while active:
        active = False
        for g in range(n):
            node = at[g]
            if node < S:
                paths[g, depths[g]] = node
                depths[g] += 1
                at[g] = child[2 * node + np.int64(X[r0 + g, cut_dim[node]] > cut_value[node])]
                active = True


@jit(inline=True)
def score_up(X: np.ndarray, r: int, tables: ScoreTables, t: int, leaf: int, depth: int, path: np.ndarray) -> float:
    """Unnormalised score of row ``r`` of ``X`` in tree ``t`` from its leaf slot back up, as :func:`walk_up`
    without attribution."""
    d = X.shape[1]
    box = tables.box
    same = True
    for i in range(d):
        same = same and X[r, i] == tables.leaf_point[t, leaf, i]
    score = leaf_score(depth, tables.leaf_mass[t, leaf], tables.mass[t], same)
    for k in range(depth - 1, -1, -1):
        a = path[k]
        sum_gap = 0.0
        for i in range(d):
            sum_gap += gap(X[r, i], box[t, a, 0, i], box[t, a, 1, i])
        if sum_gap == 0.0:
            break
        prob = sum_gap / (tables.range_sum[t, a] + sum_gap)
        score = node_score(score, prob, prob, 1.0 / (k + 1.0))
    return score


@jit()
def score_block(X: np.ndarray, out: np.ndarray, tables: ScoreTables, start: int, stop: int, work: GroupWork) -> None:
    """:func:`batch_score` of rows ``start .. stop - 1``: tree by tree, so that one tree's nodes stay in
    cache, ``_GROUP`` rows at a time (:func:`descend_group`), each then scored back up (:func:`score_up`)."""
    at, depths, paths = work.at, work.depths, work.paths
    S = tables.cut_value.shape[1]
    for t in range(tables.root.shape[0]):
        if tables.root[t] < 0:
            continue
        norm = math.log2(tables.mass[t] + 1.0)
        child, cut_dim, cut_value = tables.child[t], tables.cut_dim[t], tables.cut_value[t]
        for r0 in range(start, stop, _GROUP):
            n = min(_GROUP, stop - r0)
            descend_group(X, r0, n, child, cut_dim, cut_value, tables.root[t], work)
            for g in range(n):
                out[r0 + g] += score_up(X, r0 + g, tables, t, at[g] - S, depths[g], paths[g]) * norm


@jit(parallel=True, allocates=True)
def batch_score(X: np.ndarray, out: np.ndarray, tables: ScoreTables) -> None:
    """*Adds* to ``out`` (shape (n,)) the normalised tree scores (summed in tree order) of the rows of
    ``X`` (shape (n, D)) for the trees of ``tables`` (no update). Zeroing ``out``, calling once per
    consecutive group of trees and dividing by the number of trees gives exactly the values of
    :func:`forest_visit` row by row.

    Rows are split into blocks of ``_BLOCK`` (:func:`score_block`), in parallel when compiled; each row's
    tree scores are still summed in tree order, so the result does not depend on the thread count."""
    n = X.shape[0]
    S = tables.cut_value.shape[1]
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        work = GroupWork(
            np.empty(_GROUP, dtype=np.int64),
            np.empty(_GROUP, dtype=np.int64),
            np.empty((_GROUP, S + 1), dtype=np.int64),
        )
        score_block(X, out, tables, b * _BLOCK, min((b + 1) * _BLOCK, n), work)
