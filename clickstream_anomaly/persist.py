"""Versioned state files: one container for every saved model and streaming state of the project.

A state is a *kind* (``"rcf.StreamingRCF"``, ``"baseline.TimeAwareBaseline"``, ``"streaming.aggregator"``...),
a format *version* of that kind, a JSON-able ``meta`` dict and optional named numpy arrays. On disk and in
S3 it is::

    b"CSASTATE" | u32 header length | header (UTF-8 JSON, sorted keys) | array bytes (optionally zlib)

The header holds ``kind``, ``version``, ``meta``, ``compression`` and, per array, its name, dtype, shape
and byte offset. The bytes are deterministic (same state, same bytes), no pickle is ever involved, and a
truncated or foreign file raises :class:`StateFormatError` with the reason instead of an ``EOFError``
deep inside a decoder. Each kind converts its older versions on load (``loads(..., versions=...)`` tells
which it accepts).
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"CSASTATE"
_LEN = struct.Struct("<I")
_MAX_HEADER = 64 * 1024 * 1024


class StateFormatError(ValueError):
    """Bytes that are not a readable state of the expected kind and version."""


@dataclass
class State:
    """A decoded state: ``kind``, ``version``, ``meta`` and ``arrays`` (name -> ndarray)."""

    kind: str
    version: int
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


_INFINITE = {"inf": math.inf, "-inf": -math.inf}


def encode_infinite(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with an infinite float as text (``"inf"``, ``"-inf"``): headers are strict JSON."""
    return {
        k: (("inf" if v > 0 else "-inf") if isinstance(v, float) and math.isinf(v) else v) for k, v in params.items()
    }


def decode_infinite(params: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_infinite`."""
    return {k: (_INFINITE[v] if isinstance(v, str) and v in _INFINITE else v) for k, v in params.items()}


def dumps(
    kind: str,
    version: int,
    meta: Mapping[str, Any] | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
    *,
    compress: bool = False,
) -> bytes:
    """Serialise a state (see the module docstring). Arrays are stored little-endian, C order."""
    specs = []
    chunks = []
    offset = 0
    for name, value in (arrays or {}).items():
        arr = np.ascontiguousarray(value)
        if arr.dtype == object:
            raise TypeError(f"array {name!r} has dtype object: states hold numbers only")
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        raw = arr.tobytes()
        specs.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape), "offset": offset})
        chunks.append(raw)
        offset += len(raw)
    payload = b"".join(chunks)
    header = {
        "kind": kind,
        "version": int(version),
        "meta": dict(meta or {}),
        "arrays": specs,
        "nbytes": len(payload),
        "compression": "zlib" if compress else None,
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    body = zlib.compress(payload, 6) if compress else payload
    return MAGIC + _LEN.pack(len(text)) + text + body


def loads(data: bytes, kind: str, *, versions: Collection[int] | None = None) -> State:
    """Decode :func:`dumps`; ``kind`` must match and ``version`` be in ``versions`` (when given).

    Raises
    ------
    StateFormatError
        Not a state, a state of another kind or version, or truncated/corrupted bytes.
    """
    header, body = _split(data, kind)
    if header.get("kind") != kind:
        raise StateFormatError(f"state is a {header.get('kind')!r}, expected {kind!r}")
    version = int(header.get("version", -1))
    if versions is not None and version not in versions:
        raise StateFormatError(f"{kind} state version {version} is not readable here (known: {sorted(versions)})")
    arrays = _arrays(_payload(body, header, kind), header["arrays"], kind)
    return State(kind=kind, version=version, meta=dict(header["meta"]), arrays=arrays)


def _split(data: bytes, kind: str) -> tuple[dict[str, Any], bytes]:
    """``(header, the bytes after it)`` of a state expected to be a ``kind``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StateFormatError(f"state must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise StateFormatError(f"not a saved {kind} state (no {MAGIC.decode()} header)")
    start = len(MAGIC) + _LEN.size
    if len(data) < start:
        raise StateFormatError(f"{kind} state truncated: {len(data)} bytes")
    (n,) = _LEN.unpack_from(data, len(MAGIC))
    if n > _MAX_HEADER or len(data) < start + n:
        raise StateFormatError(f"{kind} state truncated: header of {n} bytes, {len(data) - start} present")
    try:
        header = json.loads(data[start : start + n])
    except ValueError as exc:
        raise StateFormatError(f"{kind} state has a corrupted header: {exc}") from exc
    return header, data[start + n :]


def _payload(body: bytes, header: Mapping[str, Any], kind: str) -> bytes:
    """The array bytes: ``body`` decompressed as the header says, checked against its ``nbytes``."""
    if header.get("compression") == "zlib":
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise StateFormatError(f"{kind} state corrupted: {exc}") from exc
    if len(body) != int(header.get("nbytes", -1)):
        raise StateFormatError(f"{kind} state truncated: {len(body)} of {header.get('nbytes')} array bytes present")
    return body


def _arrays(body: bytes, specs: list[dict[str, Any]], kind: str) -> dict[str, np.ndarray]:
    """The named arrays of the header's ``specs`` (name, dtype, shape, offset), copied out of ``body``."""
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        dtype = np.dtype(spec["dtype"])
        shape = tuple(int(s) for s in spec["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        off = int(spec["offset"])
        end = off + count * dtype.itemsize
        if end > len(body):
            raise StateFormatError(f"{kind} state corrupted: array {spec['name']!r} runs past the end")
        arr = np.frombuffer(body, dtype=dtype, count=count, offset=off).reshape(shape)
        arrays[spec["name"]] = arr.astype(dtype.newbyteorder("="), copy=True)
    return arrays


def dumps_document(kind: str, version: int, document: Any, *, compress: bool = True) -> bytes:
    """A state whose content is one JSON document (sets of users, outboxes...): stored as the compressed
    array ``document`` so that large ones stay small; :func:`loads_document` reads it back."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return dumps(
        kind, version, {"encoding": "json"}, {"document": np.frombuffer(text, dtype=np.uint8)}, compress=compress
    )


def loads_document(data: bytes, kind: str, *, versions: Collection[int] | None = None) -> tuple[int, Any]:
    """``(version, document)`` of a :func:`dumps_document` state (errors as :func:`loads`)."""
    st = loads(data, kind, versions=versions)
    if "document" not in st.arrays:
        raise StateFormatError(f"{kind} state holds no document")
    try:
        return st.version, json.loads(st.arrays["document"].tobytes())
    except ValueError as exc:
        raise StateFormatError(f"{kind} state has a corrupted document: {exc}") from exc


def peek_kind(data: bytes) -> tuple[str, int] | None:
    """``(kind, version)`` of a state, or ``None`` when ``data`` is not one (to convert older formats)."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _LEN.size:
        return None
    (n,) = _LEN.unpack_from(data, len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC) + _LEN.size : len(MAGIC) + _LEN.size + n])
        return str(header["kind"]), int(header["version"])
    except (ValueError, KeyError, TypeError):
        return None


def save(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a state file; a missing file raises ``FileNotFoundError`` naming it."""
    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"{target}: no such state file")
    return target.read_bytes()
