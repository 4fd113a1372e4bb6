"""Numeric kernels of the Random Cut Forest: RNG, tree insert/delete, sampler, score/attribution visitor.

One source for both execution modes: compiled by numba when available (see :mod:`._jit`), plain Python
otherwise. All state lives in flat numpy arrays (node fields as parallel arrays, as in the AWS Java
``AbstractNodeStore``); the layout is created in :mod:`.arrays`. ``I`` below is the forest's index type:
int16 when ``T * S + 1 <= 32767`` (the default 100 x 256 forest), else int32.

* ``tmeta`` int64 ``(T, 8)``: per tree ``root, mass, free_cached, free_uncached, free_leaf, sampler_size,
  rng_s1, rng_s2``. A node reference ``r`` is an internal node when ``r < S`` and leaf ``r - S``
  otherwise (``S`` = sample size = node capacity); ``-1`` is "no node". The three ``free_*`` entries head
  singly linked free lists threaded through the free slots themselves (``tint[t, v, 0]`` of a free
  internal node, ``leaf[t, l, 0]`` of a free leaf), so free slots cost no extra memory.
* ``tint`` I ``(T, S, 3)``: internal nodes ``left, right, cut_dim``; ``cval`` float32 ``(T, S)`` cut
  values (a point goes left when ``x[cut_dim] <= cut_value``).
* ``box`` float32 ``(T, K, 2, D)``: the bounding-box cache (min row, max row) of internal nodes
  ``0 .. K-1`` (AWS ``boundingBoxCacheFraction`` = ``K / S``). The box of any other node is the union of
  its children's, computed on demand by :func:`node_box`. Nodes are placed so that the cached slots go to
  the top of the tree, where boxes are large and used by every walk: a node created or walked through
  at depth ``< cached_depth(K)`` takes (or moves to) a cached slot when one is free; deeper nodes prefer
  uncached slots. Which slot a node uses never changes a result, only the time to get its box.
* Values are float32 as in the AWS default ``precision = FLOAT_32``: inputs are rounded to float32 on
  entry, so boxes and cuts are exact float32 values; arithmetic is float64 (reads go through ``_f64``
  so that numba and NumPy promote the same way).
* ``leaf`` I ``(T, S, 2)``: ``point index, mass`` (mass > 1 for duplicates).
* ``skey`` float32 / ``spt`` I ``(T, S)``: each tree's sampler, a max-heap of weights with the point
  index held (time-decayed weighted reservoir, AWS ``CompactSampler``, float weights as AWS keeps them).
  Weights are stored relative to the arrival number ``pmeta[2]`` and re-based every ``64 / lambda``
  arrivals so that float32 keeps them exact to about 1e-5 however long the stream runs.
* ``pts`` float32 ``(C, D)``, ``pref`` I ``(C,)``, ``pfree`` I ``(C,)``, ``pmeta`` int64 ``(3,)`` =
  ``n_free, entries_seen, key_base``: the point store shared by all trees, reference counted; it never
  needs more than ``T * S + 1`` slots.

The random numbers come from a per-tree L'Ecuyer (1988) combined LCG held in ``tmeta`` so that the state
is saved with the model and the compiled and pure-Python paths draw the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit, prange

ROOT, MASS, FREE_C, FREE_U, FREE_L, SSIZE, RNG1, RNG2 = 0, 1, 2, 3, 4, 5, 6, 7
N_TMETA = 8
N_FREE, SEEN, KEY_BASE = 0, 1, 2
#: sampler weights are re-based once ``lambda * (arrivals since the base)`` exceeds this
REBASE_SPAN = 64.0
_M1 = 2147483563
_M2 = 2147483399


@jit(inline=True)
def cached_depth(k):
    """Depth above which nodes get the ``k`` cached box slots first: a full binary tree of this depth
    has about ``k`` internal nodes."""
    if k <= 0:
        return 0
    return int(math.log2(k + 1.0))


@jit(inline=True)
def _f64(x):
    """A float32 array value as float64 (numba's ``float()`` keeps float32; NumPy's weak scalars would too)."""
    return np.float64(x)


@jit(inline=True)
def uniform(tmeta, t):
    """One uniform draw in (0, 1) from tree ``t``'s generator (31-bit resolution)."""
    s1 = (tmeta[t, RNG1] * 40014) % _M1
    s2 = (tmeta[t, RNG2] * 40692) % _M2
    tmeta[t, RNG1] = s1
    tmeta[t, RNG2] = s2
    z = s1 - s2
    if z < 1:
        z += _M1 - 1
    return z * 4.656613057391769e-10


@jit()
def _random_cut(mlo, mhi, u):
    """Cut of the box ``[mlo, mhi]``: dimension chosen proportionally to its range, value uniform."""
    d = mlo.shape[0]
    total = 0.0
    for i in range(d):
        total += mhi[i] - mlo[i]
    r = u * total
    last = -1
    for i in range(d):
        rng = mhi[i] - mlo[i]
        if rng > 0.0:
            last = i
            if r < rng:
                # values are float32 (AWS FLOAT_32 precision); keep the cut in [lo, hi) after rounding
                c = _f64(np.float32(mlo[i] + r))
                if c >= mhi[i] or c < mlo[i]:
                    c = mlo[i]
                return i, c
            r -= rng
    # rounding fallback: last dimension with positive range
    return last, mlo[last]


# ---------------------------------------------------------------------- free lists
@jit(inline=True)
def _pop_internal(t, tmeta, tint, prefer_cached):
    """Take a free internal slot: a cached one first when ``prefer_cached``, else an uncached one first."""
    first = FREE_C if prefer_cached else FREE_U
    which = first if tmeta[t, first] >= 0 else FREE_U + FREE_C - first
    v = tmeta[t, which]
    tmeta[t, which] = tint[t, v, 0]
    return v


@jit(inline=True)
def _push_internal(t, v, tmeta, tint, k):
    which = FREE_C if v < k else FREE_U
    tint[t, v, 0] = tmeta[t, which]
    tmeta[t, which] = v


@jit(inline=True)
def _pop_leaf(t, tmeta, leaf):
    lf = tmeta[t, FREE_L]
    tmeta[t, FREE_L] = leaf[t, lf, 0]
    return lf


@jit(inline=True)
def _push_leaf(t, lf, tmeta, leaf):
    leaf[t, lf, 0] = tmeta[t, FREE_L]
    tmeta[t, FREE_L] = lf


@jit(inline=True)
def _replace_child(t, parent, old, new, tmeta, tint):
    """Make ``new`` take ``old``'s place under ``parent`` (or as the root when ``parent < 0``)."""
    if parent < 0:
        tmeta[t, ROOT] = new
    elif tint[t, parent, 0] == old:
        tint[t, parent, 0] = new
    else:
        tint[t, parent, 1] = new


# ---------------------------------------------------------------------- boxes
@jit()
def subtree_box(t, v, pts, tint, box, leaf, lo, hi, stack):
    """Box of the uncached internal node ``v`` into ``lo``/``hi``: the union over its subtree down to
    cached boxes and leaves. ``stack`` is an int workspace (>= 2S + 2)."""
    S = leaf.shape[1]
    K = box.shape[1]
    d = pts.shape[1]
    for i in range(d):
        lo[i] = np.inf
        hi[i] = -np.inf
    stack[0] = tint[t, v, 0]
    stack[1] = tint[t, v, 1]
    top = 2
    while top > 0:
        top -= 1
        u = stack[top]
        if u >= S:
            p = leaf[t, u - S, 0]
            for i in range(d):
                x = _f64(pts[p, i])
                if x < lo[i]:
                    lo[i] = x
                if x > hi[i]:
                    hi[i] = x
        elif u < K:
            for i in range(d):
                a = _f64(box[t, u, 0, i])
                b = _f64(box[t, u, 1, i])
                if a < lo[i]:
                    lo[i] = a
                if b > hi[i]:
                    hi[i] = b
        else:
            stack[top] = tint[t, u, 0]
            stack[top + 1] = tint[t, u, 1]
            top += 2


@jit()
def node_box(t, v, pts, tint, box, leaf, lo, hi, stack):
    """Bounding box of node ``v`` into ``lo``/``hi`` (``d`` floats): a leaf's point, a cached box, or
    :func:`subtree_box`. Hot loops read cached boxes themselves and call this for the rest."""
    S = leaf.shape[1]
    d = pts.shape[1]
    if v >= S:
        p = leaf[t, v - S, 0]
        for i in range(d):
            lo[i] = _f64(pts[p, i])
            hi[i] = lo[i]
    elif v < box.shape[1]:
        for i in range(d):
            lo[i] = _f64(box[t, v, 0, i])
            hi[i] = _f64(box[t, v, 1, i])
    else:
        subtree_box(t, v, pts, tint, box, leaf, lo, hi, stack)


# ---------------------------------------------------------------------- tree updates
@jit()
def tree_insert(t, pidx, pts, tmeta, tint, cval, box, leaf, ws, stack):
    """Insert store point ``pidx`` into tree ``t``; return the store index the tree now uses for it
    (an existing equal point's index when the point is a duplicate). ``ws`` is a ``(4, d)`` float
    workspace."""
    S = cval.shape[1]
    K = box.shape[1]
    top_depth = cached_depth(K)
    d = pts.shape[1]
    mlo = ws[0]
    mhi = ws[1]
    blo = ws[2]
    bhi = ws[3]
    tmeta[t, MASS] += 1
    node = tmeta[t, ROOT]
    if node < 0:
        lf = _pop_leaf(t, tmeta, leaf)
        leaf[t, lf, 0] = pidx
        leaf[t, lf, 1] = 1
        tmeta[t, ROOT] = S + lf
        return pidx
    parent = -1
    depth = 0
    dim = 0
    c = 0.0
    while True:
        if node >= S:
            q = leaf[t, node - S, 0]
            same = True
            for i in range(d):
                if _f64(pts[q, i]) != _f64(pts[pidx, i]):
                    same = False
                    break
            if same:
                leaf[t, node - S, 1] += 1
                return q
            for i in range(d):
                a = _f64(pts[q, i])
                b = _f64(pts[pidx, i])
                mlo[i] = a if a < b else b
                mhi[i] = b if a < b else a
            dim, c = _random_cut(mlo, mhi, uniform(tmeta, t))
            break
        if node < K:
            for i in range(d):
                blo[i] = _f64(box[t, node, 0, i])
                bhi[i] = _f64(box[t, node, 1, i])
        else:
            subtree_box(t, node, pts, tint, box, leaf, blo, bhi, stack)
        if node >= K and depth < top_depth and tmeta[t, FREE_C] >= 0:
            # move this upper node into a free cached slot
            v = _pop_internal(t, tmeta, tint, True)
            for j in range(3):
                tint[t, v, j] = tint[t, node, j]
            cval[t, v] = cval[t, node]
            for i in range(d):
                box[t, v, 0, i] = blo[i]
                box[t, v, 1, i] = bhi[i]
            _replace_child(t, parent, node, v, tmeta, tint)
            _push_internal(t, node, tmeta, tint, K)
            node = v
        for i in range(d):
            x = _f64(pts[pidx, i])
            mlo[i] = x if x < blo[i] else blo[i]
            mhi[i] = x if x > bhi[i] else bhi[i]
        dim, c = _random_cut(mlo, mhi, uniform(tmeta, t))
        xp = _f64(pts[pidx, dim])
        if (xp <= c and c < blo[dim]) or (xp > c and c >= bhi[dim]):
            break
        if node < K:
            for i in range(d):
                box[t, node, 0, i] = mlo[i]
                box[t, node, 1, i] = mhi[i]
        parent = node
        depth += 1
        go_left = _f64(pts[pidx, tint[t, node, 2]]) <= _f64(cval[t, node])
        node = tint[t, node, 0] if go_left else tint[t, node, 1]
    # a new internal node replaces `node`, with the new leaf and `node` as children
    n = _pop_internal(t, tmeta, tint, depth < top_depth)
    lf = _pop_leaf(t, tmeta, leaf)
    leaf[t, lf, 0] = pidx
    leaf[t, lf, 1] = 1
    tint[t, n, 2] = dim
    cval[t, n] = c
    if n < K:
        for i in range(d):
            box[t, n, 0, i] = mlo[i]
            box[t, n, 1, i] = mhi[i]
    if _f64(pts[pidx, dim]) <= c:
        tint[t, n, 0] = S + lf
        tint[t, n, 1] = node
    else:
        tint[t, n, 0] = node
        tint[t, n, 1] = S + lf
    _replace_child(t, parent, node, n, tmeta, tint)
    return pidx


@jit()
def tree_delete(t, pidx, pts, tmeta, tint, cval, box, leaf, ws, path, stack):
    """Remove one copy of store point ``pidx`` from tree ``t`` (it must be in the tree)."""
    S = cval.shape[1]
    K = box.shape[1]
    d = pts.shape[1]
    tmeta[t, MASS] -= 1
    node = tmeta[t, ROOT]
    depth = 0
    while node < S:
        path[depth] = node
        depth += 1
        go_left = _f64(pts[pidx, tint[t, node, 2]]) <= _f64(cval[t, node])
        node = tint[t, node, 0] if go_left else tint[t, node, 1]
    lf = node - S
    leaf[t, lf, 1] -= 1
    if leaf[t, lf, 1] > 0:
        return
    _push_leaf(t, lf, tmeta, leaf)
    if depth == 0:
        tmeta[t, ROOT] = -1
        return
    par = path[depth - 1]
    sib = tint[t, par, 1] if tint[t, par, 0] == node else tint[t, par, 0]
    _push_internal(t, par, tmeta, tint, K)
    _replace_child(t, path[depth - 2] if depth > 1 else -1, par, sib, tmeta, tint)
    if depth == 1:
        return
    # shrink the cached boxes of the ancestors; stop at the first cached one that is unchanged
    llo = ws[0]
    lhi = ws[1]
    rlo = ws[2]
    rhi = ws[3]
    for k in range(depth - 2, -1, -1):
        a = path[k]
        if a >= K:
            continue
        node_box(t, tint[t, a, 0], pts, tint, box, leaf, llo, lhi, stack)
        node_box(t, tint[t, a, 1], pts, tint, box, leaf, rlo, rhi, stack)
        changed = False
        for i in range(d):
            lo = llo[i] if llo[i] < rlo[i] else rlo[i]
            hi = lhi[i] if lhi[i] > rhi[i] else rhi[i]
            if lo != _f64(box[t, a, 0, i]) or hi != _f64(box[t, a, 1, i]):
                changed = True
                box[t, a, 0, i] = lo
                box[t, a, 1, i] = hi
        if not changed:
            break


# ---------------------------------------------------------------------- scoring
@jit(inline=True)
def tree_visit(t, q, pts, tmeta, tint, cval, box, leaf, want_attr, high, low, path, th, tl, ws, stack):
    """AWS anomaly score of ``q`` in tree ``t`` (normalised by log2(mass + 1)); when ``want_attr`` the
    DiVector of the same walk is *added* to ``high``/``low``. ``path`` (>= depth ints), ``th``, ``tl``
    (``d`` floats), ``ws`` ``(4, d)`` and ``stack`` are workspaces.

    As in AWS ``AbstractScalarScoreVisitor``: descend to the leaf ``q`` would reach, score the leaf
    (``damp / (depth + log2(mass + 1))`` for an equal point, else ``1 / (depth + 1)``), then go back up:
    at a node of depth ``k`` with separation probability ``p`` (growth of the box's range sum when ``q``
    is merged in / merged range sum), ``s = p / (k + 1) + (1 - p) * s``; stop at the first box that holds
    ``q`` (``p = 0`` there and above). The DiVector follows the same recursion with ``p`` split per
    dimension and side."""
    S = cval.shape[1]
    node = tmeta[t, ROOT]
    if node < 0:
        return 0.0
    depth = 0
    while node < S:
        path[depth] = node
        depth += 1
        node = tint[t, node, 0] if q[tint[t, node, 2]] <= _f64(cval[t, node]) else tint[t, node, 1]
    return visit_up(t, q, node, depth, path, pts, tmeta, tint, box, leaf, want_attr, high, low, th, tl, ws, stack)


@jit(inline=True)
def visit_up(t, q, node, depth, path, pts, tmeta, tint, box, leaf, want_attr, high, low, th, tl, ws, stack):
    """Second half of :func:`tree_visit`: score the leaf ``node`` reached at ``depth`` through ``path``
    and accumulate back up to the first box holding ``q``. The box of each ancestor is its cached box,
    or the box below on the path merged with the sibling's."""
    S = leaf.shape[1]
    K = box.shape[1]
    d = q.shape[0]
    clo = ws[0]
    chi = ws[1]
    slo = ws[2]
    shi = ws[3]
    tree_mass = tmeta[t, MASS]
    norm = math.log2(tree_mass + 1.0)
    p = leaf[t, node - S, 0]
    same = True
    sum_gap = 0.0
    for i in range(d):
        clo[i] = _f64(pts[p, i])
        chi[i] = clo[i]
        g = q[i] - clo[i]
        if g != 0.0:
            same = False
            sum_gap += abs(g)
    if same:
        m = leaf[t, node - S, 1]
        score = (1.0 - m / (2.0 * tree_mass)) / (depth + math.log2(m + 1.0))
        if want_attr:
            share = score / (2.0 * d)
            for i in range(d):
                th[i] = share
                tl[i] = share
    else:
        score = 1.0 / (depth + 1.0)
        if want_attr:
            for i in range(d):
                g = q[i] - clo[i]
                th[i] = score * (g / sum_gap) if g > 0.0 else 0.0
                tl[i] = score * (-g / sum_gap) if g < 0.0 else 0.0
    child = node
    for k in range(depth - 1, -1, -1):
        a = path[k]
        if a < K:
            for i in range(d):
                clo[i] = _f64(box[t, a, 0, i])
                chi[i] = _f64(box[t, a, 1, i])
        else:
            sib = tint[t, a, 1] if tint[t, a, 0] == child else tint[t, a, 0]
            if sib >= S:
                ps = leaf[t, sib - S, 0]
                for i in range(d):
                    slo[i] = _f64(pts[ps, i])
                    shi[i] = slo[i]
            else:
                node_box(t, sib, pts, tint, box, leaf, slo, shi, stack)
            for i in range(d):
                if slo[i] < clo[i]:
                    clo[i] = slo[i]
                if shi[i] > chi[i]:
                    chi[i] = shi[i]
        child = a
        sum_gap = 0.0
        sum_range = 0.0
        for i in range(d):
            x = q[i]
            lo = clo[i]
            hi = chi[i]
            sum_range += hi - lo
            if x > hi:
                sum_gap += x - hi
            elif x < lo:
                sum_gap += lo - x
        if sum_gap == 0.0:
            break
        merged = sum_range + sum_gap
        prob = sum_gap / merged
        inv = 1.0 / (k + 1.0)
        score = prob * inv + (1.0 - prob) * score
        if want_attr:
            for i in range(d):
                x = q[i]
                gh = (x - chi[i]) / merged if x > chi[i] else 0.0
                gl = (clo[i] - x) / merged if x < clo[i] else 0.0
                th[i] = gh * inv + (1.0 - prob) * th[i]
                tl[i] = gl * inv + (1.0 - prob) * tl[i]
    if want_attr:
        for i in range(d):
            high[i] += th[i] * norm
            low[i] += tl[i] * norm
    return score * norm


@jit()
def forest_visit(q, pts, tmeta, tint, cval, box, leaf, want_attr, high, low, path, th, tl, ws, stack):
    """Forest score of ``q``: the mean of the tree scores; ``high``/``low`` (zeroed here) get the mean
    DiVector when ``want_attr``. Their total equals the score up to rounding."""
    n_trees = tmeta.shape[0]
    for i in range(q.shape[0]):
        high[i] = 0.0
        low[i] = 0.0
    total = 0.0
    for t in range(n_trees):
        total += tree_visit(t, q, pts, tmeta, tint, cval, box, leaf, want_attr, high, low, path, th, tl, ws, stack)
    if want_attr:
        for i in range(q.shape[0]):
            high[i] /= n_trees
            low[i] /= n_trees
    return total / n_trees


# ---------------------------------------------------------------------- sampler
@jit()
def sampler_update(
    t, pidx, seq, lam, pts, pref, pfree, pmeta, tmeta, tint, cval, box, leaf, skey, spt, ws, path, stack
):
    """Offer store point ``pidx`` (arrival number ``seq``) to tree ``t``'s time-decayed reservoir:
    weight ``-lam * seq + log(-log u)`` (stored relative to ``pmeta[2]``); kept while among the ``S``
    smallest weights. An evicted point is deleted from the tree and dereferenced; an accepted one is
    inserted."""
    S = skey.shape[1]
    u = uniform(tmeta, t)
    key = _f64(np.float32(-lam * (seq - pmeta[KEY_BASE]) + math.log(-math.log(u))))
    size = tmeta[t, SSIZE]
    if size < S:
        used = tree_insert(t, pidx, pts, tmeta, tint, cval, box, leaf, ws, stack)
        pref[used] += 1
        # sift up
        j = size
        while j > 0:
            par = (j - 1) // 2
            if _f64(skey[t, par]) >= key:
                break
            skey[t, j] = skey[t, par]
            spt[t, j] = spt[t, par]
            j = par
        skey[t, j] = key
        spt[t, j] = used
        tmeta[t, SSIZE] = size + 1
        return
    if key >= _f64(skey[t, 0]):
        return
    old = spt[t, 0]
    tree_delete(t, old, pts, tmeta, tint, cval, box, leaf, ws, path, stack)
    pref[old] -= 1
    if pref[old] == 0:
        pfree[pmeta[N_FREE]] = old
        pmeta[N_FREE] += 1
    used = tree_insert(t, pidx, pts, tmeta, tint, cval, box, leaf, ws, stack)
    pref[used] += 1
    # replace the root of the max-heap and sift down
    j = 0
    while True:
        c = 2 * j + 1
        if c >= S:
            break
        if c + 1 < S and skey[t, c + 1] > skey[t, c]:
            c += 1
        if _f64(skey[t, c]) <= key:
            break
        skey[t, j] = skey[t, c]
        spt[t, j] = spt[t, c]
        j = c
    skey[t, j] = key
    spt[t, j] = used


@jit()
def rebase_keys(lam, pmeta, tmeta, skey):
    """Move the sampler weights' base to the current arrival (order-preserving, float32)."""
    shift = lam * (pmeta[SEEN] - pmeta[KEY_BASE])
    for t in range(tmeta.shape[0]):
        for j in range(tmeta[t, SSIZE]):
            skey[t, j] = _f64(skey[t, j]) + shift
    pmeta[KEY_BASE] = pmeta[SEEN]


@jit()
def forest_update(q, lam, pts, pref, pfree, pmeta, tmeta, tint, cval, box, leaf, skey, spt, ws, path, stack):
    """Add ``q`` to the store (a free slot must exist) and offer it to every tree's sampler."""
    pmeta[N_FREE] -= 1
    pidx = pfree[pmeta[N_FREE]]
    for i in range(q.shape[0]):
        pts[pidx, i] = q[i]
    pref[pidx] = 0
    pmeta[SEEN] += 1
    seq = pmeta[SEEN]
    if lam * (seq - pmeta[KEY_BASE]) > REBASE_SPAN:
        rebase_keys(lam, pmeta, tmeta, skey)
    for t in range(tmeta.shape[0]):
        sampler_update(
            t, pidx, seq, lam, pts, pref, pfree, pmeta, tmeta, tint, cval, box, leaf, skey, spt, ws, path, stack
        )
    if pref[pidx] == 0:
        pfree[pmeta[N_FREE]] = pidx
        pmeta[N_FREE] += 1


@jit()
def stream_process(
    X,
    lam,
    output_after,
    do_score,
    do_attr,
    do_update,
    scores,
    high,
    low,
    pts,
    pref,
    pfree,
    pmeta,
    tmeta,
    tint,
    cval,
    box,
    leaf,
    skey,
    spt,
):
    """For each row of ``X``: score (and attribution) against the current forest, then update.
    Rows are scored only once ``entries_seen >= output_after`` (otherwise left at 0). The forest
    arguments are :meth:`.arrays.ForestArrays.kernel_args`."""
    d = X.shape[1]
    S = cval.shape[1]
    ws = np.empty((4, d))
    th = np.empty(d)
    tl = np.empty(d)
    path = np.empty(S + 1, dtype=np.int64)
    stack = np.empty(2 * S + 2, dtype=np.int64)
    for r in range(X.shape[0]):
        q = X[r]
        if do_score and pmeta[SEEN] >= output_after:
            rr = r if do_attr else 0
            scores[r] = forest_visit(
                q, pts, tmeta, tint, cval, box, leaf, do_attr, high[rr], low[rr], path, th, tl, ws, stack
            )
        if do_update:
            forest_update(q, lam, pts, pref, pfree, pmeta, tmeta, tint, cval, box, leaf, skey, spt, ws, path, stack)


@jit()
def build_trees(samples, pts, tmeta, tint, cval, box, leaf):
    """Batch build: tree ``t`` gets the store points ``samples[t]`` (``-1`` entries are skipped)."""
    d = pts.shape[1]
    S = cval.shape[1]
    ws = np.empty((4, d))
    stack = np.empty(2 * S + 2, dtype=np.int64)
    for t in range(samples.shape[0]):
        for j in range(samples.shape[1]):
            p = samples[t, j]
            if p >= 0:
                tree_insert(t, p, pts, tmeta, tint, cval, box, leaf, ws, stack)


@jit()
def all_boxes(pts, tmeta, tint, box, leaf, out):
    """Every internal node's box into ``out`` ``(T, S, 2, D)`` float64 (children before parents, one pass
    per tree); free slots are left as they are."""
    S = leaf.shape[1]
    K = box.shape[1]
    d = pts.shape[1]
    order = np.empty(S, dtype=np.int64)
    stack = np.empty(2 * S + 2, dtype=np.int64)
    for t in range(tmeta.shape[0]):
        root = tmeta[t, ROOT]
        if root < 0 or root >= S:
            continue
        n = 0
        stack[0] = root
        top = 1
        while top > 0:
            top -= 1
            v = stack[top]
            order[n] = v
            n += 1
            for j in range(2):
                c = tint[t, v, j]
                if c < S:
                    stack[top] = c
                    top += 1
        for m in range(n - 1, -1, -1):
            v = order[m]
            if v < K:
                for i in range(d):
                    out[t, v, 0, i] = _f64(box[t, v, 0, i])
                    out[t, v, 1, i] = _f64(box[t, v, 1, i])
                continue
            for i in range(d):
                out[t, v, 0, i] = np.inf
                out[t, v, 1, i] = -np.inf
            for j in range(2):
                c = tint[t, v, j]
                for i in range(d):
                    if c >= S:
                        lo = _f64(pts[leaf[t, c - S, 0], i])
                        hi = lo
                    else:
                        lo = out[t, c, 0, i]
                        hi = out[t, c, 1, i]
                    if lo < out[t, v, 0, i]:
                        out[t, v, 0, i] = lo
                    if hi > out[t, v, 1, i]:
                        out[t, v, 1, i] = hi


_GROUP = 8  # rows descended together in batch scoring


def score_tables(pts, tmeta, tint, cval, box, leaf):
    """Read-only float64/int64 copies of the trees for :func:`batch_score` (plain NumPy, both modes).

    Returns ``child`` ``(T, 2S)`` (node ``v``'s left child at ``2v``, right at ``2v + 1``), ``dim``
    ``(T, S)``, ``cut`` ``(T, S)``, ``bx`` ``(T, S, 2, D)`` (every internal node's box, cached or
    not), ``rsum`` ``(T, S)`` (each box's
    range sum, added dimension by dimension from 0 as :func:`visit_up` does) and ``lpt`` ``(T, S, D)``
    (each leaf slot's point). About ``T * S * (40 + 24 D)`` bytes, freed after the call."""
    T, S = cval.shape
    child = np.ascontiguousarray(tint[:, :, :2], dtype=np.int64).reshape(T, 2 * S)
    dim = np.ascontiguousarray(tint[:, :, 2], dtype=np.int64)
    cut = cval.astype(np.float64)
    bx = np.zeros((T, S, 2, pts.shape[1]))
    all_boxes(pts, tmeta, tint, box, leaf, bx)
    rsum = np.zeros((T, S))
    for i in range(box.shape[3]):
        rsum += bx[:, :, 1, i] - bx[:, :, 0, i]
    lpt = pts[leaf[:, :, 0]].astype(np.float64)
    return child, dim, cut, bx, rsum, lpt


@jit(parallel=True)
def batch_score(X, out, tmeta, leaf, child, dim, cut, bx, rsum, lpt):
    """*Adds* to ``out`` the unnormalised tree scores (summed in tree order) of all rows of ``X`` for the
    trees of ``tmeta``/``leaf`` and of the tables of :func:`score_tables` (no update). Zeroing ``out``,
    calling once per consecutive group of trees and dividing by the number of trees gives exactly the
    values of :func:`forest_visit` row by row.

    Rows are split into blocks (in parallel when compiled; each row's tree scores are still summed in tree
    order, so the result does not depend on the thread count). Within a block the loop runs tree by tree
    so that one tree's nodes stay in cache, and descends ``_GROUP`` rows at a time, interleaved level by
    level, so that their independent memory loads overlap; then each row is scored back up as in
    :func:`visit_up` without attribution (``max(x - hi, 0) + max(lo - x, 0)`` is the same gap, as
    ``lo <= hi``)."""
    n = X.shape[0]
    d = X.shape[1]
    n_trees = tmeta.shape[0]
    S = cut.shape[1]
    G = _GROUP
    block = 2048
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        paths = np.empty((G, S + 1), dtype=np.int64)
        nodes = np.empty(G, dtype=np.int64)
        depths = np.empty(G, dtype=np.int64)
        start = b * block
        stop = min(start + block, n)
        for t in range(n_trees):
            root = tmeta[t, ROOT]
            if root < 0:
                continue
            tree_mass = tmeta[t, MASS]
            norm = math.log2(tree_mass + 1.0)
            for r0 in range(start, stop, G):
                gn = min(G, stop - r0)
                for g in range(gn):
                    nodes[g] = root
                    depths[g] = 0
                active = True
                while active:
                    active = False
                    for g in range(gn):
                        node = nodes[g]
                        if node < S:
                            paths[g, depths[g]] = node
                            depths[g] += 1
                            nodes[g] = child[t, 2 * node + np.int64(X[r0 + g, dim[t, node]] > cut[t, node])]
                            active = True
                for g in range(gn):
                    r = r0 + g
                    depth = depths[g]
                    lf = nodes[g] - S
                    same = True
                    for i in range(d):
                        if X[r, i] != lpt[t, lf, i]:
                            same = False
                    if same:
                        m = leaf[t, lf, 1]
                        score = (1.0 - m / (2.0 * tree_mass)) / (depth + math.log2(m + 1.0))
                    else:
                        score = 1.0 / (depth + 1.0)
                    for k in range(depth - 1, -1, -1):
                        a = paths[g, k]
                        sum_gap = 0.0
                        for i in range(d):
                            x = X[r, i]
                            sum_gap += max(x - bx[t, a, 1, i], 0.0) + max(bx[t, a, 0, i] - x, 0.0)
                        if sum_gap == 0.0:
                            break
                        merged = rsum[t, a] + sum_gap
                        prob = sum_gap / merged
                        score = prob * (1.0 / (k + 1.0)) + (1.0 - prob) * score
                    out[r] += score * norm
