"""Versioned serialisation of forests: a ``.npz`` archive of the state arrays plus a JSON header.

The header holds ``format``, ``version``, the class name and its constructor parameters; the arrays
hold everything that changes (trees, samplers, point store, RNG states, shingle buffer), so a restored
model continues exactly as the original would have. Loading never unpickles (``allow_pickle=False``).

Versions: 1 (full box cache, free-slot stacks, float64 sampler weights) is still read and converted
by :meth:`.arrays.ForestArrays.from_v1`; 2 is the current layout (partial box cache, intrusive free
lists, float32 weights, int16 indices for forests up to 32 767 samples in all).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np

FORMAT = "clickstream-anomaly-rcf"
VERSION = 2
#: versions this code reads
READABLE = (1, 2)


def dumps(kind: str, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise a model of class ``kind`` to bytes."""
    header = json.dumps({"format": FORMAT, "version": VERSION, "kind": kind, "params": params})
    buf = io.BytesIO()
    np.savez_compressed(buf, __header__=np.frombuffer(header.encode(), dtype=np.uint8), **arrays)
    return buf.getvalue()


def loads(data: bytes, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    """Inverse of :func:`dumps`: ``(params, arrays, version)``; ``ValueError`` on a foreign or newer
    file."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise ValueError(f"not a saved {kind} model: {exc}") from exc
    raw = arrays.pop("__header__", None)
    if raw is None:
        raise ValueError(f"not a saved {kind} model: no header")
    header = json.loads(raw.tobytes().decode())
    if header.get("format") != FORMAT:
        raise ValueError(f"not a saved {kind} model: format {header.get('format')!r}")
    if header.get("version") not in READABLE:
        raise ValueError(
            f"unsupported {kind} state version {header.get('version')} "
            f"(this code reads versions {', '.join(map(str, READABLE))})"
        )
    if header.get("kind") != kind:
        raise ValueError(f"saved model is a {header.get('kind')}, not a {kind}")
    return header["params"], arrays, int(header["version"])


def save(path: str | os.PathLike[str], data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def load(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()
