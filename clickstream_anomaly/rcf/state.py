"""Saved forests: the state format, its versions, and the conversion of older versions.

Version 3 (current) is a :mod:`clickstream_anomaly.persist` state of kind ``rcf.RandomCutForest`` or
``rcf.StreamingRCF``: ``meta`` holds the constructor parameters (``params``) and the fitted values
(``fitted``); the arrays are the :class:`.arrays.Forest` (``nodes.left``, ``boxes.lo``, ``sampler.weight``,
``store.points``, ``rng``, ...) plus the model's own (the streaming forest's ``shingle_buffer``).
Everything that changes is saved, so a restored model continues exactly as the original would have.

Older versions were ``.npz`` archives with a JSON header (format ``clickstream-anomaly-rcf``); they are
still read (never unpickled) and converted:

* version 1: full box cache, free-slot stacks, float64 sampler weights (:func:`v1_to_v2`);
* version 2: partial box cache, free lists, float32 weights, the node fields packed in ``tmeta``
  ``(T, 8)``, ``tint`` ``(T, S, 3)``, ``leaf`` ``(T, S, 2)``, ``box`` ``(T, K, 2, D)`` (:func:`v2_to_forest`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from .. import persist
from ..thresholds import ThresholdRule
from .arrays import Forest, array_names, from_arrays, index_dtype, to_arrays
from .boxes import BoxCache, cached_slots
from .nodes import NodeStore, free_chain
from .pointstore import PointStore
from .sampler import Sampler

VERSION = 3
#: the ``format`` field of the version 1 and 2 ``.npz`` states
LEGACY_FORMAT = "clickstream-anomaly-rcf"
LEGACY_VERSIONS = (1, 2)


@dataclass
class SavedForest:
    """A decoded state: constructor ``params``, ``fitted`` values, the ``forest``, the model's ``extra``
    arrays, and the ``version`` it was saved in."""

    params: dict[str, Any]
    fitted: dict[str, Any]
    forest: Forest
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = VERSION


def state_kind(model_kind: str) -> str:
    """The :mod:`~clickstream_anomaly.persist` kind of a model class name."""
    return f"rcf.{model_kind}"


def jsonable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with numpy numbers as Python numbers, a threshold rule as its spec, and a
    ``random_state`` that is not an int (a ``SeedSequence`` or a ``Generator``) as None."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, ThresholdRule):
            value = value.spec
        elif isinstance(value, bool) or value is None or isinstance(value, str):
            pass
        elif isinstance(value, Integral):
            value = int(value)
        elif isinstance(value, Real):
            value = float(value)
        elif name == "random_state":
            value = None
        out[name] = value
    return out


def encode(
    params: Mapping[str, Any],
    fitted: Mapping[str, Any],
    forest: Forest,
    extra: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a model: the parts of a version-3 state (for states that embed a forest)."""
    arrays = to_arrays(forest)
    arrays.update(extra or {})
    return {"params": dict(params), "fitted": dict(fitted)}, arrays


def decode(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], version: int = VERSION) -> SavedForest:
    """Inverse of :func:`encode`."""
    names = set(array_names())
    extra = {k: v for k, v in arrays.items() if k not in names}
    return SavedForest(dict(meta["params"]), dict(meta["fitted"]), from_arrays(dict(arrays)), extra, version)


def dumps(
    model_kind: str,
    params: Mapping[str, Any],
    fitted: Mapping[str, Any],
    forest: Forest,
    extra: Mapping[str, np.ndarray] | None = None,
) -> bytes:
    """Serialise a model of class ``model_kind`` (version :data:`VERSION`, zlib-compressed)."""
    meta, arrays = encode(params, fitted, forest, extra)
    return persist.dumps(state_kind(model_kind), VERSION, meta, arrays, compress=True)


def loads(data: bytes, model_kind: str, defaults: Mapping[str, Any]) -> SavedForest:
    """Decode :func:`dumps` or a version 1/2 ``.npz`` state of class ``model_kind``; ``defaults`` are the
    class's constructor defaults (for parameters an old state does not name).

    Raises
    ------
    ValueError
        Bytes that are not such a state, of another class, or of an unknown version
        (:class:`~clickstream_anomaly.persist.StateFormatError` for version 3 states).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"not a saved {model_kind} model: got {type(data).__name__}, not bytes")
    data = bytes(data)
    if persist.peek_kind(data) is None:
        return _loads_legacy(data, model_kind, defaults)
    state = persist.loads(data, state_kind(model_kind), versions=(VERSION,))
    return decode(state.meta, state.arrays, state.version)


# ---------------------------------------------------------------------- versions 1 and 2
def _read_npz(data: bytes, model_kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    """``(params, arrays, version)`` of a version 1/2 ``.npz`` state."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise ValueError(f"not a saved {model_kind} model: {exc}") from exc
    raw = arrays.pop("__header__", None)
    if raw is None:
        raise ValueError(f"not a saved {model_kind} model: no header")
    header = json.loads(raw.tobytes().decode())
    if header.get("format") != LEGACY_FORMAT:
        raise ValueError(f"not a saved {model_kind} model: format {header.get('format')!r}")
    if header.get("version") not in LEGACY_VERSIONS:
        raise ValueError(
            f"unsupported {model_kind} state version {header.get('version')} "
            f"(this code reads versions {', '.join(map(str, (*LEGACY_VERSIONS, VERSION)))})"
        )
    if header.get("kind") != model_kind:
        raise ValueError(f"saved model is a {header.get('kind')}, not a {model_kind}")
    return header["params"], arrays, int(header["version"])


def _loads_legacy(data: bytes, model_kind: str, defaults: Mapping[str, Any]) -> SavedForest:
    saved, arrays, version = _read_npz(data, model_kind)
    params = {**defaults, **saved}
    fitted = {"n_raw": int(params.pop("n_raw"))} if "n_raw" in params else {}
    extra = {k: arrays.pop(k) for k in ("shingle_buffer",) if k in arrays}
    if version == 1:
        time_decay = params.get("time_decay", 0.0)  # a batch forest's weights do not decay
        if time_decay is None:
            time_decay = 1.0 / (10 * int(params["sample_size"]))
        arrays = v1_to_v2(arrays, float(time_decay), float(params["bounding_box_cache_fraction"]))
    return SavedForest(params, fitted, v2_to_forest(arrays), extra, version)


def v2_to_forest(arrays: Mapping[str, np.ndarray]) -> Forest:
    """The :class:`.arrays.Forest` of the arrays of a version-2 state (the same values, unpacked)."""
    need = ["tmeta", "tint", "cval", "box", "leaf", "skey", "spt", "pts", "pref", "pfree", "pmeta"]
    missing = [n for n in need if n not in arrays]
    if missing:
        raise ValueError(f"forest state is missing arrays: {missing}")

    def col(a: np.ndarray, *index: Any) -> np.ndarray:
        return np.ascontiguousarray(a[index])

    tmeta, tint, leaf, box, pmeta = (arrays[k] for k in ("tmeta", "tint", "leaf", "box", "pmeta"))
    nodes = NodeStore(
        root=col(tmeta, slice(None), 0),
        mass=col(tmeta, slice(None), 1),
        free_cached=col(tmeta, slice(None), 2),
        free_uncached=col(tmeta, slice(None), 3),
        free_leaf=col(tmeta, slice(None), 4),
        left=col(tint, Ellipsis, 0),
        right=col(tint, Ellipsis, 1),
        cut_dim=col(tint, Ellipsis, 2),
        cut_value=col(arrays["cval"]),
        leaf_point=col(leaf, Ellipsis, 0),
        leaf_mass=col(leaf, Ellipsis, 1),
    )
    sampler = Sampler(
        weight=col(arrays["skey"]),
        point=col(arrays["spt"]),
        size=col(tmeta, slice(None), 5),
        seen=np.array([pmeta[1]], dtype=np.int64),
        weight_base=np.array([pmeta[2]], dtype=np.int64),
    )
    store = PointStore(
        points=col(arrays["pts"]),
        refs=col(arrays["pref"]),
        free=col(arrays["pfree"]),
        n_free=np.array([pmeta[0]], dtype=np.int64),
    )
    boxes = BoxCache(lo=col(box, slice(None), slice(None), 0), hi=col(box, slice(None), slice(None), 1))
    return Forest(nodes=nodes, boxes=boxes, sampler=sampler, store=store, rng=col(tmeta, slice(None), slice(6, 8)))


def v1_to_v2(arrays: Mapping[str, np.ndarray], time_decay: float, box_cache_fraction: float) -> dict[str, np.ndarray]:
    """Convert the arrays of a version-1 state (full box cache, free-slot stacks, float64 weights) to the
    version-2 layout. The trees, samples, point store and generator states are kept, so the model
    continues the same stream (weights are rounded to float32, which can only reorder weights closer
    than about 1e-5)."""
    need = ["tmeta", "tint", "cval", "box", "leaf", "free", "skey", "spt", "pts", "pref", "pfree", "pmeta"]
    missing = [n for n in need if n not in arrays]
    if missing:
        raise ValueError(f"version-1 forest state is missing arrays: {missing}")
    old_meta = arrays["tmeta"]
    T, S = arrays["cval"].shape
    K = cached_slots(S, box_cache_fraction)
    idx = index_dtype(T, S)
    tmeta = np.zeros((T, 8), dtype=np.int64)
    # v1 tmeta: root, mass, n_free_internal, n_free_leaf, sampler_size, rng_s1, rng_s2
    tmeta[:, 0], tmeta[:, 1] = old_meta[:, 0], old_meta[:, 1]
    tmeta[:, 5:8] = old_meta[:, 4:7]
    tint = arrays["tint"].astype(idx)
    leaf = arrays["leaf"].astype(idx)
    free = arrays["free"]
    for t in range(T):
        stack = free[t, 0, : old_meta[t, 2]][::-1]  # pop order
        tmeta[t, 2], nxt = free_chain(stack[stack < K], idx)
        tint[t, stack[stack < K], 0] = nxt
        tmeta[t, 3], nxt = free_chain(stack[stack >= K], idx)
        tint[t, stack[stack >= K], 0] = nxt
        leaves = free[t, 1, : old_meta[t, 3]][::-1]
        tmeta[t, 4], nxt = free_chain(leaves, idx)
        leaf[t, leaves, 0] = nxt
    entries_seen = int(arrays["pmeta"][1])
    return {
        "tmeta": tmeta,
        "tint": tint,
        "cval": arrays["cval"].astype(np.float32),
        "box": np.ascontiguousarray(arrays["box"][:, :K], dtype=np.float32),
        "leaf": leaf,
        "skey": (arrays["skey"] + float(time_decay) * entries_seen).astype(np.float32),
        "spt": arrays["spt"].astype(idx),
        "pts": arrays["pts"].astype(np.float32),
        "pref": arrays["pref"].astype(idx),
        "pfree": arrays["pfree"].astype(idx),
        "pmeta": np.array([int(arrays["pmeta"][0]), entries_seen, entries_seen], dtype=np.int64),
    }
