"""Small state objects kept in S3 with optimistic concurrency (conditional writes).

A read returns the object and its ETag; a write says ``If-Match: <etag>`` (or ``If-None-Match: *`` for
the first one), so two concurrent invocations cannot both write on top of the same version: the loser
gets ``PreconditionFailed`` (412) or ``ConditionalRequestConflict`` (409), re-reads and re-applies its
change (:func:`transact`). Changes must therefore be pure functions of the state they are given.

:class:`MemoryStore` is the contract in memory, for tests and local runs; the S3 implementation is
:class:`clickstream_anomaly.aws.s3_store.S3Store`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class StateConflict(RuntimeError):
    """The object changed since it was read (someone else wrote it)."""


class Store(Protocol):
    def load(self) -> tuple[bytes | None, str | None]: ...

    def save(self, data: bytes, etag: str | None) -> str: ...


@dataclass
class MemoryStore:
    """In-memory :class:`Store` with the same conditional-write rules."""

    data: bytes | None = None
    version: int = 0
    writes: int = field(default=0)

    def load(self) -> tuple[bytes | None, str | None]:
        return self.data, (str(self.version) if self.data is not None else None)

    def save(self, data: bytes, etag: str | None) -> str:
        current = str(self.version) if self.data is not None else None
        if etag != current:
            raise StateConflict("memory state changed since it was read")
        self.data = data
        self.version += 1
        self.writes += 1
        return str(self.version)


def transact(
    store: Store,
    decode: Callable[[bytes | None], T],
    encode: Callable[[T], bytes],
    change: Callable[[T], Any],
    *,
    max_tries: int = 20,
) -> tuple[T, Any]:
    """Read, apply ``change(state)`` (in place; its return value is passed back), write conditionally.

    On a conflict the state is re-read and ``change`` re-applied, up to ``max_tries`` times. Returns the
    written state and ``change``'s return value.
    """
    for _ in range(max_tries):
        raw, etag = store.load()
        state = decode(raw)
        out = change(state)
        try:
            store.save(encode(state), etag)
        except StateConflict:
            continue
        return state, out
    raise StateConflict(f"gave up after {max_tries} conflicting writes")
