"""The node store: every tree's internal nodes and leaves as parallel arrays (AWS ``AbstractNodeStore``,
"a column-oriented database of nodes"), with the free lists that recycle their slots.

A tree of the forest has ``S`` internal-node slots and ``S`` leaf slots (``S`` = sample size). A *node
reference* ``r`` names internal node ``r`` when ``r < S`` and leaf ``r - S`` otherwise; ``-1`` is no node.
A point goes to the left child when ``x[cut_dim] <= cut_value``. Free slots form singly linked lists
threaded through the free slots themselves (``left`` of a free internal node, ``leaf_point`` of a free
leaf), so they cost no extra memory. Internal slots ``0 .. K-1`` have a cached bounding box
(:mod:`.boxes`) and have their own free list.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import jit

NO_NODE = -1


class NodeStore(NamedTuple):
    """The nodes of ``T`` trees with ``S`` slots each; ``I`` is the index type (int16 or int32).

    Attributes
    ----------
    root, mass : ndarray of shape (T,), int64
        Each tree's root reference (-1 when empty) and number of points (duplicates counted).
    free_cached, free_uncached, free_leaf : ndarray of shape (T,), int64
        Heads of each tree's free lists of internal slots with and without a cached box, and of leaves.
    left, right, cut_dim : ndarray of shape (T, S), I
        Each internal node's children (node references) and cut dimension.
    cut_value : ndarray of shape (T, S), float32
        Each internal node's cut value.
    leaf_point, leaf_mass : ndarray of shape (T, S), I
        Each leaf's point-store index and multiplicity (more than 1 for duplicates).
    """

    root: np.ndarray
    mass: np.ndarray
    free_cached: np.ndarray
    free_uncached: np.ndarray
    free_leaf: np.ndarray
    left: np.ndarray
    right: np.ndarray
    cut_dim: np.ndarray
    cut_value: np.ndarray
    leaf_point: np.ndarray
    leaf_mass: np.ndarray


def free_chain(order: np.ndarray, dtype: type[np.signedinteger]) -> tuple[int, np.ndarray]:
    """Head and next-pointers of a free list that hands out the slots ``order`` in order (the last
    next-pointer is -1)."""
    nxt = np.empty(order.size, dtype=dtype)
    nxt[:-1] = order[1:]
    if order.size:
        nxt[-1] = NO_NODE
    return (int(order[0]) if order.size else NO_NODE), nxt


def empty_nodes(n_trees: int, slots: int, cached: int, index: type[np.signedinteger]) -> NodeStore:
    """Empty trees of ``slots`` slots whose free lists hand out 0, 1, 2, ... (cached internal slots
    ``0 .. cached-1``, uncached ``cached .. slots-1``, leaves ``0 .. slots-1``)."""
    T, S, K = int(n_trees), int(slots), int(cached)
    nodes = NodeStore(
        root=np.full(T, NO_NODE, dtype=np.int64),
        mass=np.zeros(T, dtype=np.int64),
        free_cached=np.zeros(T, dtype=np.int64),
        free_uncached=np.zeros(T, dtype=np.int64),
        free_leaf=np.zeros(T, dtype=np.int64),
        left=np.full((T, S), NO_NODE, dtype=index),
        right=np.full((T, S), NO_NODE, dtype=index),
        cut_dim=np.full((T, S), NO_NODE, dtype=index),
        cut_value=np.zeros((T, S), dtype=np.float32),
        leaf_point=np.zeros((T, S), dtype=index),
        leaf_mass=np.zeros((T, S), dtype=index),
    )
    nodes.free_cached[:], nodes.left[:, :K] = free_chain(np.arange(K), index)
    nodes.free_uncached[:], nodes.left[:, K:] = free_chain(np.arange(K, S), index)
    nodes.free_leaf[:], nodes.leaf_point[:] = free_chain(np.arange(S), index)
    return nodes


@jit(inline=True)
def pop_internal(nodes: NodeStore, t: int, prefer_cached: bool) -> int:
    """Take a free internal slot of tree ``t``: one with a cached box first when ``prefer_cached``, else
    one without first."""
    use_cached = nodes.free_cached[t] >= 0 if prefer_cached else nodes.free_uncached[t] < 0
    heads = nodes.free_cached if use_cached else nodes.free_uncached
    v = heads[t]
    heads[t] = nodes.left[t, v]
    return v


@jit(inline=True)
def push_internal(nodes: NodeStore, t: int, v: int, cached: int) -> None:
    """Give internal slot ``v`` of tree ``t`` back (to the cached list when ``v < cached``)."""
    heads = nodes.free_cached if v < cached else nodes.free_uncached
    nodes.left[t, v] = heads[t]
    heads[t] = v


@jit(inline=True)
def pop_leaf(nodes: NodeStore, t: int) -> int:
    """Take a free leaf slot of tree ``t``."""
    lf = nodes.free_leaf[t]
    nodes.free_leaf[t] = nodes.leaf_point[t, lf]
    return lf


@jit(inline=True)
def push_leaf(nodes: NodeStore, t: int, lf: int) -> None:
    """Give leaf slot ``lf`` of tree ``t`` back."""
    nodes.leaf_point[t, lf] = nodes.free_leaf[t]
    nodes.free_leaf[t] = lf


@jit(inline=True)
def replace_child(nodes: NodeStore, t: int, parent: int, old: int, new: int) -> None:
    """Make node ``new`` take ``old``'s place under ``parent`` (or as the root when ``parent < 0``)."""
    if parent < 0:
        nodes.root[t] = new
    elif nodes.left[t, parent] == old:
        nodes.left[t, parent] = new
    else:
        nodes.right[t, parent] = new
