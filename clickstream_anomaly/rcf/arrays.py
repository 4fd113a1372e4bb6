"""The forest's state as one named tuple of numpy arrays (:class:`Forest`): the node store, the box
cache, the samplers, the point store and the generators, as the kernels take them; plus the flat
``{name: array}`` form the saved state holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, TypeVar

import numpy as np

from ._jit import jit
from .boxes import DEFAULT_BOX_CACHE_FRACTION, BoxCache, cached_slots, empty_boxes
from .nodes import NodeStore, empty_nodes
from .pointstore import PointStore, empty_store, with_free_slots
from .rng import seeded_states
from .sampler import Sampler, empty_sampler

__all__ = [
    "DEFAULT_BOX_CACHE_FRACTION",
    "FOREST_ARRAYS",
    "FlatArrays",
    "Forest",
    "array_names",
    "forest_args",
    "from_args",
    "from_arrays",
    "index_dtype",
    "new_forest",
    "to_arrays",
]

_Part = TypeVar("_Part", NodeStore, BoxCache, Sampler, PointStore)
_PARTS: dict[str, type[NodeStore | BoxCache | Sampler | PointStore]] = {
    "nodes": NodeStore,
    "boxes": BoxCache,
    "sampler": Sampler,
    "store": PointStore,
}


class Forest(NamedTuple):
    """All mutable state of a forest of ``T`` trees of ``S`` slots over ``D`` dimensions.

    Attributes
    ----------
    nodes : NodeStore
        The trees (:mod:`.nodes`).
    boxes : BoxCache
        The cached boxes of each tree's first ``K`` internal slots (:mod:`.boxes`).
    sampler : Sampler
        Each tree's time-decayed reservoir (:mod:`.sampler`).
    store : PointStore
        The points the trees hold, each once (:mod:`.pointstore`).
    rng : ndarray of shape (T, 2), int64
        Each tree's generator state (:mod:`.rng`).
    """

    nodes: NodeStore
    boxes: BoxCache
    sampler: Sampler
    store: PointStore
    rng: np.ndarray

    @property
    def max_live_points(self) -> int:
        """Store slots that can ever be in use at once: every tree's sample plus the arriving point."""
        T, S = self.nodes.cut_value.shape
        return T * S + 1

    def with_free_slots(self, n: int) -> Forest:
        """This forest, its point store grown when needed so that ``n`` more points can arrive."""
        store = with_free_slots(self.store, n, self.max_live_points)
        return self if store is self.store else self._replace(store=store)

    def nbytes(self) -> int:
        """Bytes held by the arrays (the model's memory)."""
        return int(sum(a.nbytes for a in to_arrays(self).values()))


#: A forest's arrays as one flat plain tuple (see :func:`forest_args`), possibly followed by others.
FlatArrays = tuple[np.ndarray, ...]

# where each part's arrays end in forest_args
_NODES_END = len(NodeStore._fields)
_BOXES_END = _NODES_END + len(BoxCache._fields)
_SAMPLER_END = _BOXES_END + len(Sampler._fields)
_STORE_END = _SAMPLER_END + len(PointStore._fields)
#: the number of arrays of :func:`forest_args`
FOREST_ARRAYS = _STORE_END + 1


def forest_args(forest: Forest) -> FlatArrays:
    """``forest``'s arrays as one flat plain tuple (node store, box cache, samplers, point store, in field
    order, then ``rng``), for a kernel called once per point: numba's dispatcher types a flat tuple of
    arrays much faster than named or nested tuples (on the 2-core build machine about 1 µs a call against
    4 µs for a whole :class:`Forest`); :func:`from_args` rebuilds the named tuples inside the kernel."""
    nodes, boxes, sampler, store, rng = forest
    return (*nodes, *boxes, *sampler, *store, rng)


@jit(inline=True)
def from_args(args: FlatArrays) -> Forest:
    """The :class:`Forest` of the first :data:`FOREST_ARRAYS` arrays of ``args`` (:func:`forest_args`; the
    same arrays, no copy)."""
    return Forest(
        NodeStore(*args[:_NODES_END]),
        BoxCache(*args[_NODES_END:_BOXES_END]),
        Sampler(*args[_BOXES_END:_SAMPLER_END]),
        PointStore(*args[_SAMPLER_END:_STORE_END]),
        args[_STORE_END],
    )


def index_dtype(n_trees: int, sample_size: int) -> type[np.signedinteger]:
    """int16 when every node and store index of a ``n_trees x sample_size`` forest fits, else int32."""
    return np.int16 if n_trees * sample_size + 1 <= 32767 and 2 * sample_size <= 32767 else np.int32


def new_forest(
    n_trees: int,
    sample_size: int,
    dim: int,
    seed_seq: np.random.SeedSequence,
    box_cache_fraction: float = DEFAULT_BOX_CACHE_FRACTION,
    store_capacity: int | None = None,
) -> Forest:
    """A forest of empty trees; each tree's generator is seeded from ``seed_seq``. The point store starts
    with ``store_capacity`` slots (default ``min(2 * sample_size, n_trees * sample_size + 1)``)."""
    T, S, D = int(n_trees), int(sample_size), int(dim)
    K = cached_slots(S, box_cache_fraction)
    index = index_dtype(T, S)
    cap = int(store_capacity) if store_capacity is not None else min(2 * S, T * S + 1)
    return Forest(
        nodes=empty_nodes(T, S, K, index),
        boxes=empty_boxes(T, K, D),
        sampler=empty_sampler(T, S, index),
        store=empty_store(cap, D, index),
        rng=seeded_states(seed_seq, T),
    )


def to_arrays(forest: Forest) -> dict[str, np.ndarray]:
    """The forest as ``{"nodes.left": ..., "boxes.lo": ..., "rng": ...}``."""
    out = {f"{part}.{name}": value for part in _PARTS for name, value in getattr(forest, part)._asdict().items()}
    out["rng"] = forest.rng
    return out


def array_names() -> list[str]:
    """The keys of :func:`to_arrays`."""
    return [f"{part}.{name}" for part, cls in _PARTS.items() for name in cls._fields] + ["rng"]


def _part(cls: type[_Part], part: str, arrays: Mapping[str, np.ndarray]) -> _Part:
    """The ``cls`` named tuple of the arrays ``{part}.{field}`` of ``arrays``, each C-contiguous."""
    return cls(**{name: np.ascontiguousarray(arrays[f"{part}.{name}"]) for name in cls._fields})


def from_arrays(arrays: dict[str, np.ndarray]) -> Forest:
    """Inverse of :func:`to_arrays` (other keys are ignored); ``ValueError`` naming any missing array."""
    missing = [n for n in array_names() if n not in arrays]
    if missing:
        raise ValueError(f"forest state is missing arrays: {missing}")
    return Forest(
        nodes=_part(NodeStore, "nodes", arrays),
        boxes=_part(BoxCache, "boxes", arrays),
        sampler=_part(Sampler, "sampler", arrays),
        store=_part(PointStore, "store", arrays),
        rng=np.ascontiguousarray(arrays["rng"]),
    )
