"""The forest's state as flat numpy arrays (layout documented in :mod:`._kernels`), with the point store's
growth and conversion to/from a plain ``dict`` of arrays for :mod:`.state`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ._kernels import FREE_C, FREE_L, FREE_U, N_FREE, N_TMETA, RNG1, RNG2, ROOT, SEEN

_M1 = 2147483563
_M2 = 2147483399
#: default share of internal nodes whose bounding box is cached (AWS ``boundingBoxCacheFraction``)
DEFAULT_BOX_CACHE_FRACTION = 0.3


def index_dtype(n_trees: int, sample_size: int) -> type[np.signedinteger]:
    """int16 when every node and store index of a ``n_trees x sample_size`` forest fits, else int32."""
    return np.int16 if n_trees * sample_size + 1 <= 32767 and 2 * sample_size <= 32767 else np.int32


def cached_slots(sample_size: int, fraction: float) -> int:
    """Number of internal-node slots with a cached box for a cache ``fraction`` in [0, 1]."""
    return min(int(sample_size), round(float(fraction) * sample_size))


def _chain(order: np.ndarray, dtype: type) -> tuple[int, np.ndarray]:
    """Head and next-pointers of a free list visiting ``order`` (next of the last is -1)."""
    nxt = np.empty(order.size, dtype=dtype)
    nxt[:-1] = order[1:]
    if order.size:
        nxt[-1] = -1
    return (int(order[0]) if order.size else -1), nxt


@dataclass
class ForestArrays:
    """All mutable state of a forest of ``T`` trees with node capacity ``S`` over ``D`` dimensions,
    ``K`` cached boxes per tree and a point store of capacity ``C`` (index type ``I``: int16 or int32)."""

    tmeta: np.ndarray  # int64 (T, 8)
    tint: np.ndarray  # I (T, S, 3)
    cval: np.ndarray  # float32 (T, S)
    box: np.ndarray  # float32 (T, K, 2, D)
    leaf: np.ndarray  # I (T, S, 2)
    skey: np.ndarray  # float32 (T, S)
    spt: np.ndarray  # I (T, S)
    pts: np.ndarray  # float32 (C, D)
    pref: np.ndarray  # I (C,)
    pfree: np.ndarray  # I (C,)
    pmeta: np.ndarray  # int64 (3,): n_free, entries_seen, key_base

    @classmethod
    def empty(
        cls,
        n_trees: int,
        sample_size: int,
        dim: int,
        seed_seq: np.random.SeedSequence,
        box_cache_fraction: float = DEFAULT_BOX_CACHE_FRACTION,
        store_capacity: int | None = None,
    ) -> ForestArrays:
        """A forest of empty trees. Each tree's generator is seeded from ``seed_seq``."""
        T, S, D = int(n_trees), int(sample_size), int(dim)
        K = cached_slots(S, box_cache_fraction)
        idx = index_dtype(T, S)
        cap = int(store_capacity) if store_capacity is not None else min(2 * S, T * S + 1)
        tmeta = np.zeros((T, N_TMETA), dtype=np.int64)
        tmeta[:, ROOT] = -1
        seeds = seed_seq.generate_state(2 * T, dtype=np.uint64).reshape(T, 2)
        tmeta[:, RNG1] = (seeds[:, 0] % np.uint64(_M1 - 1)).astype(np.int64) + 1
        tmeta[:, RNG2] = (seeds[:, 1] % np.uint64(_M2 - 1)).astype(np.int64) + 1
        tint = np.full((T, S, 3), -1, dtype=idx)
        # free lists pop 0, 1, 2, ... (cached internal slots 0..K-1, uncached K..S-1, leaves 0..S-1)
        tmeta[:, FREE_C], tint[:, :K, 0] = _chain(np.arange(K), idx)
        tmeta[:, FREE_U], tint[:, K:, 0] = _chain(np.arange(K, S), idx)
        leaf = np.zeros((T, S, 2), dtype=idx)
        tmeta[:, FREE_L], leaf[:, :, 0] = _chain(np.arange(S), idx)
        return cls(
            tmeta=tmeta,
            tint=tint,
            cval=np.zeros((T, S), dtype=np.float32),
            box=np.zeros((T, K, 2, D), dtype=np.float32),
            leaf=leaf,
            skey=np.zeros((T, S), dtype=np.float32),
            spt=np.full((T, S), -1, dtype=idx),
            pts=np.zeros((cap, D), dtype=np.float32),
            pref=np.zeros(cap, dtype=idx),
            pfree=np.arange(cap - 1, -1, -1, dtype=idx),
            pmeta=np.array([cap, 0, 0], dtype=np.int64),
        )

    @property
    def entries_seen(self) -> int:
        return int(self.pmeta[SEEN])

    @property
    def max_store(self) -> int:
        """Store slots that can ever be in use at once: every tree's sample plus the arriving point."""
        T, S = self.cval.shape
        return T * S + 1

    def kernel_args(self) -> tuple[np.ndarray, ...]:
        """The arrays in the order the kernels take them (``pts`` ... ``spt``)."""
        return (
            self.pts,
            self.pref,
            self.pfree,
            self.pmeta,
            self.tmeta,
            self.tint,
            self.cval,
            self.box,
            self.leaf,
            self.skey,
            self.spt,
        )

    def ensure_free(self, n: int) -> None:
        """Grow the point store (by a quarter, up to :attr:`max_store`) so that ``n`` more points can
        arrive before the next call."""
        cap = self.pts.shape[0]
        nf = int(self.pmeta[N_FREE])
        live = cap - nf
        need = min(int(n), self.max_store - live)
        if nf >= need:
            return
        new_cap = min(self.max_store, max(live + need, cap + cap // 4))
        pts = np.zeros((new_cap, self.pts.shape[1]), dtype=np.float32)
        pts[:cap] = self.pts
        pref = np.zeros(new_cap, dtype=self.pref.dtype)
        pref[:cap] = self.pref
        pfree = np.empty(new_cap, dtype=self.pfree.dtype)
        # new slots go below the existing free stack so that existing pops are unchanged
        added = np.arange(new_cap - 1, cap - 1, -1)
        pfree[: added.size] = added
        pfree[added.size : added.size + nf] = self.pfree[:nf]
        self.pts, self.pref, self.pfree = pts, pref, pfree
        self.pmeta[N_FREE] = nf + added.size

    def nbytes(self) -> int:
        """Bytes held by the arrays (the model's memory)."""
        return int(sum(getattr(self, f.name).nbytes for f in fields(self)))

    def to_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, np.ndarray]) -> ForestArrays:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"forest state is missing arrays: {missing}")
        return cls(**{n: np.ascontiguousarray(data[n]) for n in names})

    @classmethod
    def from_v1(
        cls, data: dict[str, np.ndarray], time_decay: float, box_cache_fraction: float = DEFAULT_BOX_CACHE_FRACTION
    ) -> ForestArrays:
        """Convert the arrays of a version-1 state (full box cache, free-slot stacks, float64 weights) to
        this layout. The trees, samples, point store and RNG states are kept, so the model continues the
        same stream (weights are rounded to float32, which can only reorder weights closer than ~1e-5)."""
        need = ["tmeta", "tint", "cval", "box", "leaf", "free", "skey", "spt", "pts", "pref", "pfree", "pmeta"]
        missing = [n for n in need if n not in data]
        if missing:
            raise ValueError(f"version-1 forest state is missing arrays: {missing}")
        old_meta = data["tmeta"]
        T, S = data["cval"].shape
        K = cached_slots(S, box_cache_fraction)
        idx = index_dtype(T, S)
        tmeta = np.zeros((T, N_TMETA), dtype=np.int64)
        # v1 tmeta: root, mass, n_free_internal, n_free_leaf, sampler_size, rng_s1, rng_s2
        tmeta[:, ROOT], tmeta[:, 1] = old_meta[:, 0], old_meta[:, 1]
        tmeta[:, 5:8] = old_meta[:, 4:7]
        tint = data["tint"].astype(idx)
        leaf = data["leaf"].astype(idx)
        free = data["free"]
        for t in range(T):
            stack = free[t, 0, : old_meta[t, 2]][::-1]  # pop order
            tmeta[t, FREE_C], nxt = _chain(stack[stack < K], idx)
            tint[t, stack[stack < K], 0] = nxt
            tmeta[t, FREE_U], nxt = _chain(stack[stack >= K], idx)
            tint[t, stack[stack >= K], 0] = nxt
            leaves = free[t, 1, : old_meta[t, 3]][::-1]
            tmeta[t, FREE_L], nxt = _chain(leaves, idx)
            leaf[t, leaves, 0] = nxt
        entries_seen = int(data["pmeta"][1])
        pmeta = np.array([int(data["pmeta"][0]), entries_seen, entries_seen], dtype=np.int64)
        skey = (data["skey"] + float(time_decay) * entries_seen).astype(np.float32)
        return cls(
            tmeta=tmeta,
            tint=tint,
            cval=data["cval"].astype(np.float32),
            box=np.ascontiguousarray(data["box"][:, :K], dtype=np.float32),
            leaf=leaf,
            skey=skey,
            spt=data["spt"].astype(idx),
            pts=data["pts"].astype(np.float32),
            pref=data["pref"].astype(idx),
            pfree=data["pfree"].astype(idx),
            pmeta=pmeta,
        )
