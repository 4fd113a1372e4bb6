"""One shard's part of the Lambda aggregator: its exact open windows, checkpoint, clock and rejections.

Each shard of the clicks stream has a :class:`ShardState` of its own (one S3 object), written only by
that shard's invocations, so shards never conflict (:mod:`clickstream_anomaly.streaming.sharded`). It is
an :class:`~clickstream_anomaly.streaming.aggregation.AggregatorState` restricted to one shard: the same
re-delivery check, event-time policy and late-click rule, with ``next_start`` the first window the merge
step has not emitted yet. It never closes windows itself: it publishes a small :class:`ShardSummary`
(per open window the clicks, the distinct-user *count* and the page set) that the merge step adds up.

**Users across shards.** The producer partitions by user, so a user's clicks land on one shard and the
shards' user counts add up exactly. Where a user can be on two shards, the count is made exact by
*inheritance*: a shard created after a reshard (or after the single-object state is migrated) starts
with the user sets of its parents' open windows as ``inherited`` users, and reports only the users its
parents have not counted. A user still on two live shards in one window (a producer that does not key by
user) counts once per shard: see docs/decisions/0016-per-shard-aggregator-state.md for the bound.

**Serialisation** (the cost of an invocation is dominated by rewriting the user sets): the sets are
written unsorted, as one newline-joined text compressed with zlib level 1, inside the versioned container
(:mod:`clickstream_anomaly.persist`); everything else is a small JSON header.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import persist
from ..records import Window
from .aggregation import DEFAULT_ALLOWED_LATENESS, AggregatorState, PartialWindow, page_clicks_from_state
from .eventtime import Rejection

SHARD_KIND = "streaming.aggregator.shard"
SHARD_VERSION = 2  # 2: the open windows' pages with their clicks (1: a list of pages)
SUMMARY_VERSION = 2  # the same change
ZLIB_LEVEL = 1  # level 6 costs 4x the CPU for 5 % smaller objects, level 9 13x (bench/streaming.py)


def _pack(strings: list[str]) -> tuple[bytes, bool]:
    """``strings`` as zlib-compressed newline-joined UTF-8, or as JSON when one holds a newline;
    returns ``(blob, is_json)``."""
    text = "\n".join(strings)
    if strings and text.count("\n") != len(strings) - 1:
        return zlib.compress(json.dumps(strings).encode("utf-8"), ZLIB_LEVEL), True
    return zlib.compress(text.encode("utf-8"), ZLIB_LEVEL), False


def _text(strings: list[str]) -> str | list[str]:
    """Strings for a JSON document: one newline-joined text (fast to write and read), or the list when
    one of them holds a newline; :func:`_strings` reads either."""
    text = "\n".join(strings)
    return text if not strings or text.count("\n") == len(strings) - 1 else strings


def _strings(value: str | list[str]) -> list[str]:
    if isinstance(value, list):
        return value
    return value.split("\n") if value else []


def _unpack(blob: bytes, is_json: bool, count: int) -> list[str]:
    text = zlib.decompress(blob).decode("utf-8")
    out: list[str] = json.loads(text) if is_json else (text.split("\n") if count else [])
    if len(out) != count:
        raise persist.StateFormatError(f"{SHARD_KIND} state holds {len(out)} users, its header says {count}")
    return out


@dataclass(frozen=True)
class WindowSummary:
    """One open window of a shard as the merge step reads it: its clicks, the users the shard counts
    (module docstring), its clicks per page and whether those are known (:class:`PartialWindow`)."""

    clicks: int
    users: int
    pages: dict[str, int]
    pages_exact: bool = True

    @classmethod
    def from_list(cls, item: list[Any]) -> WindowSummary:
        """From the summary's ``[start, clicks, users, pages, exact]`` (version 1: pages a list, no flag)."""
        pages, exact = page_clicks_from_state(item[3])
        return cls(int(item[1]), int(item[2]), pages, exact and bool(item[4] if len(item) > 4 else True))


@dataclass
class ShardSummary:
    """What the merge step reads of a shard: its clock and, per open window, ``(clicks, users, pages)``.

    ``high`` is the newest click time (ns, ``None`` before the first), ``wall`` the wall clock (s) of its
    arrival; ``users`` counts only the users the shard's parents have not counted (module docstring).
    """

    shard: str
    high: int | None = None
    wall: float | None = None
    first_wall: float | None = None
    windows: dict[int, WindowSummary] = field(default_factory=dict)
    pending_rejections: int = 0
    parents: tuple[str, ...] = ()  # a child reads only after its parents' last record: they are finished
    user_sets: dict[int, frozenset[str]] | None = None  # exact mode: the users themselves, per window

    def to_json(self) -> bytes:
        doc = {
            "version": SUMMARY_VERSION,
            "shard": self.shard,
            "high": self.high,
            "wall": self.wall,
            "first_wall": self.first_wall,
            "windows": [[s, w.clicks, w.users, w.pages, w.pages_exact] for s, w in sorted(self.windows.items())],
            "pending_rejections": self.pending_rejections,
            "parents": list(self.parents),
        }
        if self.user_sets is not None:
            doc["user_sets"] = {str(k): _text(list(v)) for k, v in self.user_sets.items()}
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> ShardSummary:
        doc = json.loads(data)
        if doc.get("version") not in (1, SUMMARY_VERSION):
            raise ValueError(f"unknown shard summary version {doc.get('version')!r}")
        return cls(
            str(doc["shard"]),
            None if doc["high"] is None else int(doc["high"]),
            doc["wall"],
            doc["first_wall"],
            {int(w[0]): WindowSummary.from_list(w) for w in doc["windows"]},
            int(doc["pending_rejections"]),
            tuple(doc.get("parents", ())),
            None if "user_sets" not in doc else {int(k): frozenset(_strings(v)) for k, v in doc["user_sets"].items()},
        )


@dataclass
class ShardState(AggregatorState):
    """One shard's state (module docstring); ``inherited`` maps a window start to the users it took from
    the shard's parents (counted by them, not by this shard)."""

    shard: str = ""
    inherited: dict[int, int] = field(default_factory=dict)
    merge_tried: float | None = None  # wall clock (s) of this shard's last merge attempt
    parents: tuple[str, ...] = ()  # the shards this one was split or merged from

    @property
    def high(self) -> int | None:
        return self.shard_high.get(self.shard)

    def inherit(self, parents: list[ShardState]) -> None:
        """Start from the parents' open user sets (a new shard after a reshard, or the migrated state)."""
        for parent in parents:
            for start, part in parent.open.items():
                mine = self.open.setdefault(start, PartialWindow(start))
                mine.users |= part.users
        for start, part in self.open.items():
            self.inherited[start] = len(part.users)
        for parent in parents:  # re-delivered records of a parent are not this shard's
            clock = parent.shard_high.get(parent.shard)
            if clock is not None and self.high is None:
                self.shard_high[self.shard] = clock
                self.shard_wall[self.shard] = parent.shard_wall.get(parent.shard)

    def release(self, closed_before: int | None, taken: dict[int, int]) -> int:
        """Forget the windows the merge step emitted (before ``closed_before``); returns the clicks of
        them it did not take (``taken``: window start -> the clicks it took of this shard), which are
        counted as late. Windows at or after ``closed_before`` are kept."""
        if closed_before is None:
            return 0
        self.next_start = closed_before if self.next_start is None else max(self.next_start, closed_before)
        missed = 0
        for start in [s for s in self.open if s < self.next_start]:
            missed += max(0, self.open.pop(start).clicks - taken.get(start, 0))
            self.inherited.pop(start, None)
        self.late_dropped += missed
        return missed

    def close(self, now: float | None = None, *, until: int | None = None) -> list[Window]:
        """A shard never closes windows: the merge step does (:mod:`clickstream_anomaly.streaming.merge`)."""
        return []

    def summary(self, exact_users: bool = False) -> ShardSummary:
        """What the merge step reads; ``exact_users`` adds the user sets themselves (for a stream that is
        not keyed by user: the merge then counts their union)."""
        windows = {
            s: WindowSummary(p.clicks, len(p.users) - self.inherited.get(s, 0), dict(p.pages), p.pages_exact)
            for s, p in self.open.items()
        }
        return ShardSummary(
            self.shard,
            self.high,
            self.shard_wall.get(self.shard),
            self.first_wall,
            windows,
            len(self.rejected),
            self.parents,
            {st: frozenset(p.users) for st, p in self.open.items()} if exact_users else None,
        )

    # ---- serialisation -------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        starts = sorted(self.open)
        users = [u for s in starts for u in self.open[s].users]
        blob, is_json = _pack(users)
        meta = {
            "shard": self.shard,
            "freq": self.freq,
            "checkpoint": None if self.shard not in self.checkpoints else str(self.checkpoints[self.shard]),
            "high": self.high,
            "wall": self.shard_wall.get(self.shard),
            "first_wall": self.first_wall,
            "next_start": self.next_start,
            "merge_tried": self.merge_tried,
            "parents": list(self.parents),
            "windows": [
                [
                    s,
                    self.open[s].clicks,
                    len(self.open[s].users),
                    self.inherited.get(s, 0),
                    dict(sorted(self.open[s].pages.items())),
                    self.open[s].pages_exact,
                ]
                for s in starts
            ],
            "users_json": is_json,
            "late_dropped": self.late_dropped,
            "duplicates_skipped": self.duplicates_skipped,
            "rejected": self.rejected,
            "rejections_overflow": self.rejections_overflow,
        }
        return persist.dumps(SHARD_KIND, SHARD_VERSION, meta, {"users": np.frombuffer(blob, dtype=np.uint8)})

    @classmethod
    def from_bytes(
        cls,
        data: bytes | None,
        *,
        shard: str = "",
        freq: str = "10min",
        lateness: str = DEFAULT_ALLOWED_LATENESS,
    ) -> ShardState:
        """Decode :meth:`to_bytes`; ``None`` gives a fresh state of ``shard``."""
        if data is None:
            return cls(freq=freq, lateness=lateness, shard=shard)
        st = persist.loads(data, SHARD_KIND, versions={1, SHARD_VERSION})
        m = st.meta
        if m["freq"] != freq:
            raise ValueError(f"state was built with windows of {m['freq']}, configuration says {freq}")
        users = _unpack(st.arrays["users"].tobytes(), bool(m["users_json"]), sum(w[2] for w in m["windows"]))
        sid = str(m["shard"])
        state = cls(freq=freq, lateness=lateness, shard=sid)
        pos = 0
        for start, clicks, n_users, inherited, saved, *rest in m["windows"]:
            pages, exact = page_clicks_from_state(saved)
            exact = exact and bool(rest[0] if rest else True)
            window_users = set(users[pos : pos + n_users])
            state.open[int(start)] = PartialWindow(int(start), int(clicks), window_users, pages, exact)
            pos += n_users
            if inherited:
                state.inherited[int(start)] = int(inherited)
        if m["checkpoint"] is not None:
            state.checkpoints[sid] = int(m["checkpoint"])
        if m["high"] is not None:
            state.shard_high[sid] = int(m["high"])
            state.shard_wall[sid] = m["wall"]
        state.first_wall = m["first_wall"]
        state.next_start = m["next_start"]
        state.merge_tried = m["merge_tried"]
        state.parents = tuple(m["parents"])
        state.late_dropped = int(m["late_dropped"])
        state.duplicates_skipped = int(m["duplicates_skipped"])
        state.rejected = [Rejection.from_dict(r).to_dict() for r in m["rejected"]]
        state.rejections_overflow = int(m["rejections_overflow"])
        return state
