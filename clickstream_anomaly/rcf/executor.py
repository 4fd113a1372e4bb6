"""Forest-wide kernels: apply an arrival, a query or a batch build to every tree (AWS ``executor``, where
``SamplerPlusTree`` pairs one sampler with one tree: the sampler decides, the tree obeys)."""

from __future__ import annotations

import numpy as np

from ._jit import f64, jit
from .arrays import FOREST_ARRAYS, FlatArrays, Forest, from_args
from .pointstore import add_point, add_ref, drop_ref, release_if_unused
from .rng import uniform
from .sampler import EVICT, REBASE_SPAN, REJECT, accept, add, arrival_weight, rebase_weights
from .tree import tree_delete, tree_insert
from .walks import forest_visit
from .workspace import Workspace, new_workspace

#: the largest float32, the forests' precision; a larger input is refused
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: what :func:`point_step` returns for an input it refuses (a score is never negative)
REFUSED = -1.0


@jit()
def forest_update(forest: Forest, q: np.ndarray, lam: float, work: Workspace) -> None:
    """Add ``q`` (shape (D,)) to the point store (a free slot must exist) and offer it to every tree's
    sampler: when a sampler accepts it, the point it evicts (if any) is deleted from the tree and
    dereferenced, and ``q`` is inserted and referenced."""
    nodes, boxes, sampler, store, rng = forest
    heap, held, size = sampler.weight, sampler.point, sampler.size
    capacity = heap.shape[1]
    p = add_point(store, q)
    sampler.seen[0] += 1
    seq = sampler.seen[0]
    if lam * (seq - sampler.weight_base[0]) > REBASE_SPAN:
        rebase_weights(sampler, lam)
    base = sampler.weight_base[0]
    for t in range(size.shape[0]):
        weight = arrival_weight(lam, seq, base, uniform(rng, t))
        decision = accept(size[t], capacity, weight, f64(heap[t, 0]))
        if decision == REJECT:
            continue
        if decision == EVICT:
            evicted = held[t, 0]
            tree_delete(nodes, boxes, store.points, t, evicted, work)
            drop_ref(store, evicted)
        used = tree_insert(nodes, boxes, store.points, rng, t, p, work)
        add_ref(store, used)
        add(sampler, t, weight, used)
    release_if_unused(store, p)


@jit(allocates=True)
def stream_process(  # noqa: PLR0913  (the kernels' entry point from Python, called with these by the tests too)
    forest: Forest,
    X: np.ndarray,
    lam: float,
    output_after: int,
    do_score: bool,
    do_attr: bool,
    do_update: bool,
    scores: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
) -> None:
    """For each row of ``X`` (shape (n, D)): score (and attribution) against the current forest, then
    update. Rows are scored only once ``forest.sampler.seen >= output_after`` (otherwise left at 0).
    ``scores`` has shape (n,); ``high``/``low`` have shape (n, D) when ``do_attr``, else (1, D)."""
    nodes, boxes, sampler, store, _ = forest
    work = new_workspace(X.shape[1], nodes.cut_value.shape[1])
    for r in range(X.shape[0]):
        q = X[r]
        if do_score and sampler.seen[0] >= output_after:
            rr = r if do_attr else 0
            scores[r] = forest_visit(nodes, boxes, store.points, q, do_attr, high[rr], low[rr], work)
        if do_update:
            forest_update(forest, q, lam, work)


@jit()
def point_step(  # noqa: PLR0913  (one call per point from StreamingRCF: its state and scratch, no allocation)
    arrays: FlatArrays,
    x: np.ndarray,
    recent: np.ndarray,
    complete: bool,
    lam: float,
    output_after: int,
    do_score: bool,
    do_attr: bool,
    do_update: bool,
    high: np.ndarray,
    low: np.ndarray,
) -> float:
    """One input ``x`` (shape (d,), float64) to the forest of ``arrays`` (``arrays.forest_args`` followed by
    ``workspace.point_workspace``) of a stream with shingles of ``s`` inputs: round it to float32,
    shingle it after ``recent`` (shape (s, d), the last inputs, oldest first), score it (with the DiVector
    in ``high``/``low``, shape (D,), when ``do_attr``) as :func:`stream_process` does, then, when
    ``do_update``, insert the shingle and push ``x`` into ``recent``. ``complete`` says whether ``s - 1``
    inputs came before ``x``; until then nothing is scored or inserted. The workspace's ``query`` (shape
    (D,)) holds the shingle afterwards.

    Returns the score (0 when not scored; ``high``/``low`` are then left as they are), or ``REFUSED``
    when a value of ``x`` is not finite or beyond the float32 range, with nothing changed."""
    s, d = recent.shape
    scratch = Workspace(*arrays[FOREST_ARRAYS:])
    q = scratch.query
    tail = q.shape[0] - d
    for i in range(d):
        v = x[i]
        if not abs(v) <= FLOAT32_MAX:  # also NaN
            return REFUSED
        q[tail + i] = f64(np.float32(v))
    for k in range(1, s):
        for i in range(d):
            q[(k - 1) * d + i] = recent[k, i]
    forest = from_args(arrays)
    score = 0.0
    if complete and do_score and forest.sampler.seen[0] >= output_after:
        score = forest_visit(forest.nodes, forest.boxes, forest.store.points, q, do_attr, high, low, scratch)
    if do_update:
        if complete:
            forest_update(forest, q, lam, scratch)
        for k in range(s - 1):
            for i in range(d):
                recent[k, i] = recent[k + 1, i]
        for i in range(d):
            recent[s - 1, i] = q[tail + i]
    return score


@jit(allocates=True)
def build_trees(forest: Forest, samples: np.ndarray) -> None:
    """Batch build: tree ``t`` gets the store points ``samples[t]`` (shape (T, m); ``-1`` entries are
    skipped)."""
    nodes, boxes, _, store, rng = forest
    work = new_workspace(store.points.shape[1], nodes.cut_value.shape[1])
    for t in range(samples.shape[0]):
        for j in range(samples.shape[1]):
            p = samples[t, j]
            if p >= 0:
                tree_insert(nodes, boxes, store.points, rng, t, p, work)
