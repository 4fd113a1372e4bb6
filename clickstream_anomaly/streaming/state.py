"""Small state objects kept in S3 with optimistic concurrency (conditional writes).

A read returns the object and its ETag; a write says ``If-Match: <etag>`` (or ``If-None-Match: *`` for
the first one), so two concurrent invocations cannot both write on top of the same version: the loser
gets ``PreconditionFailed`` (412) or ``ConditionalRequestConflict`` (409), re-reads and re-applies its
change (:func:`transact`). Changes must therefore be pure functions of the state they are given.

:class:`MemoryStore` is the contract in memory, for tests and local runs; the S3 implementation is
:class:`clickstream_anomaly.aws.s3_store.S3Store`.

A saved object that cannot be decoded (truncated, corrupted, foreign) raises :class:`CorruptState`, which
names the object and the recovery command; the state is never reset silently (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class StateConflict(RuntimeError):
    """The object changed since it was read (someone else wrote it)."""


#: The documented recovery (docs/reliability.md): inspect, then reset with a backup copy.
RECOVERY = (
    "inspect it with `clickstream-anomaly state check --component {component}`, then move it aside with "
    "`clickstream-anomaly state reset --component {component} --yes` (a backup copy is kept; see the "
    "Reliability page for what each component loses)"
)


class CorruptState(RuntimeError):
    """A saved state object that cannot be read: ``location`` names it, ``reason`` says why.

    Nothing is written: the component stops on every call (its ``CorruptState`` metric and alarm fire)
    until a person resets the object with the recovery command."""

    def __init__(self, location: str, reason: str, component: str = "COMPONENT") -> None:
        self.location, self.reason, self.component = location, reason, component
        self.recovery = RECOVERY.format(component=component)
        super().__init__(f"the saved state {location} cannot be read ({reason}); it was left as is: {self.recovery}")


def location(store: object) -> str:
    """A store's name for messages: its ``location`` (``s3://bucket/key``) or its type."""
    return str(getattr(store, "location", None) or type(store).__name__)


def component_of(store: object) -> str:
    """The component a store belongs to (the first part of its key), for the recovery command."""
    key = str(getattr(store, "key", "") or "")
    return key.split("/", 1)[0] if "/" in key else "COMPONENT"


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

    A saved object ``decode`` cannot read raises :class:`CorruptState` (nothing is written). On a conflict
    the state is re-read and ``change`` re-applied, up to ``max_tries`` times. Returns the written state
    and ``change``'s return value.
    """
    for _ in range(max_tries):
        raw, etag = store.load()
        try:
            state = decode(raw)
        except Exception as exc:  # whatever a broken object raises (EOFError, zlib, unpacking, KeyError)
            if raw is None:
                raise
            why = f"{type(exc).__name__}: {exc}"
            raise CorruptState(location(store), why, component_of(store)) from exc
        out = change(state)
        try:
            store.save(encode(state), etag)
        except StateConflict:
            continue
        return state, out
    raise StateConflict(f"gave up after {max_tries} conflicting writes")
