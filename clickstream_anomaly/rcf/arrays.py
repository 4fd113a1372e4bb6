"""The forest's state as flat numpy arrays (layout documented in :mod:`._kernels`), with the point store's
growth and conversion to/from a plain ``dict`` of arrays for :mod:`.state`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ._kernels import N_TMETA, NFI, NFL, RNG1, RNG2, ROOT

_M1 = 2147483563
_M2 = 2147483399


@dataclass
class ForestArrays:
    """All mutable state of a forest of ``T`` trees with node capacity ``S`` over ``D`` dimensions."""

    tmeta: np.ndarray  # int64 (T, 7)
    tint: np.ndarray  # int16 or int32 (T, S, 3)
    cval: np.ndarray  # float32 (T, S)
    box: np.ndarray  # float32 (T, S, 2, D)
    leaf: np.ndarray  # int32 (T, S, 2)
    free: np.ndarray  # tint's dtype (T, 2, S)
    skey: np.ndarray  # float64 (T, S)
    spt: np.ndarray  # int32 (T, S)
    pts: np.ndarray  # float32 (C, D)
    pref: np.ndarray  # int32 (C,)
    pfree: np.ndarray  # int32 (C,)
    pmeta: np.ndarray  # int64 (2,): n_free, entries_seen

    @classmethod
    def empty(cls, n_trees: int, sample_size: int, dim: int, seed_seq: np.random.SeedSequence,
              store_capacity: int | None = None) -> ForestArrays:
        """A forest of empty trees. Each tree's generator is seeded from ``seed_seq``."""
        T, S, D = int(n_trees), int(sample_size), int(dim)
        cap = int(store_capacity) if store_capacity is not None else 2 * S
        tmeta = np.zeros((T, N_TMETA), dtype=np.int64)
        tmeta[:, ROOT] = -1
        tmeta[:, NFI] = S
        tmeta[:, NFL] = S
        seeds = seed_seq.generate_state(2 * T, dtype=np.uint64).reshape(T, 2)
        tmeta[:, RNG1] = (seeds[:, 0] % np.uint64(_M1 - 1)).astype(np.int64) + 1
        tmeta[:, RNG2] = (seeds[:, 1] % np.uint64(_M2 - 1)).astype(np.int64) + 1
        idx = np.int16 if S < 16000 else np.int32
        free = np.empty((T, 2, S), dtype=idx)
        free[:] = np.arange(S - 1, -1, -1, dtype=idx)  # pop order 0, 1, 2, ...
        return cls(
            tmeta=tmeta,
            tint=np.full((T, S, 3), -1, dtype=idx),
            cval=np.zeros((T, S), dtype=np.float32),
            box=np.zeros((T, S, 2, D), dtype=np.float32),
            leaf=np.zeros((T, S, 2), dtype=np.int32),
            free=free,
            skey=np.zeros((T, S)),
            spt=np.full((T, S), -1, dtype=np.int32),
            pts=np.zeros((cap, D), dtype=np.float32),
            pref=np.zeros(cap, dtype=np.int32),
            pfree=np.arange(cap - 1, -1, -1, dtype=np.int32),
            pmeta=np.array([cap, 0], dtype=np.int64),
        )

    @property
    def entries_seen(self) -> int:
        return int(self.pmeta[1])

    def ensure_free(self, n: int) -> None:
        """Grow the point store (doubling) until at least ``n`` slots are free."""
        while int(self.pmeta[0]) < n:
            cap = self.pts.shape[0]
            new_cap = 2 * cap
            pts = np.zeros((new_cap, self.pts.shape[1]), dtype=np.float32)
            pts[:cap] = self.pts
            pref = np.zeros(new_cap, dtype=np.int32)
            pref[:cap] = self.pref
            nf = int(self.pmeta[0])
            pfree = np.empty(new_cap, dtype=np.int32)
            # new slots go below the existing free stack so that existing pops are unchanged
            added = np.arange(new_cap - 1, cap - 1, -1, dtype=np.int32)
            pfree[: added.size] = added
            pfree[added.size: added.size + nf] = self.pfree[:nf]
            self.pts, self.pref, self.pfree = pts, pref, pfree
            self.pmeta[0] = nf + added.size

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

    def copy(self) -> ForestArrays:
        return ForestArrays(**{f.name: getattr(self, f.name).copy() for f in fields(self)})
