"""The merge step of the per-shard aggregator: shard summaries -> closed windows, once, in time order.

The :class:`MergeState` is one small S3 object: the first window not emitted yet (``next_start``), the
residual's day of history, the outbox of closed windows, the stream's shards and, per shard, the clicks
of each closed window it took from that shard's summary (``taken``: a shard that added clicks to a window
after it was emitted counts them as late when it learns of it). It is written only when a window closes
(or an outbox is acknowledged), so the shards' invocations rarely meet on it.

A window ``[s, s + freq)`` closes when the watermark (the slowest active shard's clock, idle shards left
out: :func:`~clickstream_anomaly.streaming.aggregation.watermark`) reaches ``s + freq + lateness``. Its
features are the sums of the shards' clicks and user counts and the union of their page sets
(:mod:`clickstream_anomaly.streaming.shard_state` says why the user counts add up), then the sampling
scale and the residual, exactly as the single-object aggregator and the batch ``features`` command do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import persist
from ..features import ResidualState, scale_clicks
from ..records import Window
from ..windowspec import DEFAULT_FREQ
from .aggregation import (
    DEFAULT_ALLOWED_LATENESS,
    MAX_OPEN_WINDOWS,
    WindowEmitter,
    _dt,
    add_page_clicks,
    last_closable,
    watermark,
    window_page_clicks,
)
from .shard_state import ShardSummary

MERGE_KIND = "streaming.aggregator.merge"
MERGE_VERSION = 1


@dataclass
class MergeState(WindowEmitter):
    """What the merge step remembers (see the module docstring)."""

    freq: str = DEFAULT_FREQ
    lateness: str = DEFAULT_ALLOWED_LATENESS
    next_start: int | None = None
    residual: ResidualState = field(default_factory=ResidualState)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)
    first_wall: float | None = None
    idle_seconds: float = 60.0
    taken: dict[str, dict[int, int]] = field(default_factory=dict)
    sampling_rate: int = 100  # configuration, not saved

    def watermark(self, summaries: Mapping[str, ShardSummary], now: float | None) -> int | None:
        """The slowest active shard's clock; a parent shard whose child has reported is finished (the
        event source mapping reads a child only after its parents' last record) and holds nothing."""
        finished = {p for s in summaries.values() for p in s.parents}
        live = {sid: s for sid, s in summaries.items() if s.high is not None and sid not in finished}
        highs = {sid: s.high for sid, s in live.items() if s.high is not None}
        walls = {sid: s.wall for sid, s in live.items()}
        return watermark(highs, walls, self.expected - finished, self.first_wall, self.idle_seconds, now)

    def closable(self, summaries: Mapping[str, ShardSummary], now: float | None, until: int | None = None) -> bool:
        """True when :meth:`close` would emit a window."""
        last = self._last(summaries, now, until)
        first = self.next_start if self.next_start is not None else self._first(summaries)
        return last is not None and first is not None and first <= last

    def _first(self, summaries: Mapping[str, ShardSummary]) -> int | None:
        starts = [s for summary in summaries.values() for s in summary.windows]
        return min(starts) if starts else None

    def _last(self, summaries: Mapping[str, ShardSummary], now: float | None, until: int | None) -> int | None:
        step = self.step
        if until is not None:
            last = (until // step) * step
        else:
            mark = self.watermark(summaries, now)
            if mark is None:
                return None
            last = last_closable(mark, step, self.lateness_ns)
        starts = sorted({s for summary in summaries.values() for s in summary.windows if s >= (self.next_start or s)})
        if len(starts) > MAX_OPEN_WINDOWS:  # bounded state: force-close the oldest beyond the cap
            last = max(last, starts[len(starts) - MAX_OPEN_WINDOWS - 1])
        return last

    def close(
        self, summaries: Mapping[str, ShardSummary], now: float | None = None, *, until: int | None = None
    ) -> list[Window]:
        """Close every window the watermark (or ``until``, a window-start bound in ns) has passed, from the
        shards' ``summaries``; the windows, empty ones included, go to the outbox and are returned."""
        last = self._last(summaries, now, until)
        start = self.next_start if self.next_start is not None else self._first(summaries)
        if last is None or start is None or start > last:
            return []
        out: list[Window] = []
        while start <= last:
            clicks = users = 0
            pages: dict[str, int] = {}
            pages_exact = True
            exact: set[str] = set()
            for sid, summary in summaries.items():
                part = summary.windows.get(start)
                if part is not None:
                    clicks += part.clicks
                    add_page_clicks(pages, part.pages)
                    pages_exact = pages_exact and part.pages_exact
                    if summary.user_sets is not None and start in summary.user_sets:
                        exact |= summary.user_sets[start]
                    else:
                        users += part.users
                    self.taken.setdefault(sid, {})[start] = part.clicks
            users += len(exact)
            scaled = int(scale_clicks(clicks, self.sampling_rate))  # the one scaling (features.py)
            residual = self.residual.residual(scaled, users)
            page_clicks = window_page_clicks(pages, self.sampling_rate) if pages_exact else None
            out.append(Window(_dt(start), len(pages), users, scaled, residual, page_clicks=page_clicks))
            start += self.step
        self.next_start = start
        for sid in list(self.taken):  # keep what a shard has not released yet
            held = summaries[sid].windows if sid in summaries else {}
            self.taken[sid] = {s: c for s, c in self.taken[sid].items() if s in held}
            if not self.taken[sid]:
                del self.taken[sid]
        self.outbox.extend(w.to_stream_dict() for w in out)
        return out

    # ---- serialisation -------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        doc = {
            "freq": self.freq,
            "next_start": self.next_start,
            "residual": self.residual.to_dict(),
            "outbox": self.outbox,
            "expected": sorted(self.expected),
            "first_wall": self.first_wall,
            "idle_seconds": self.idle_seconds,
            "taken": {sid: [[s, c] for s, c in sorted(t.items())] for sid, t in sorted(self.taken.items())},
        }
        return persist.dumps_document(MERGE_KIND, MERGE_VERSION, doc)

    @classmethod
    def from_bytes(
        cls, data: bytes | None, *, freq: str = DEFAULT_FREQ, lateness: str = DEFAULT_ALLOWED_LATENESS
    ) -> MergeState:
        """Decode :meth:`to_bytes`; ``None`` gives a fresh state with ``freq``/``lateness``."""
        if data is None:
            return cls(freq=freq, lateness=lateness)
        _, doc = persist.loads_document(data, MERGE_KIND, versions={MERGE_VERSION})
        if doc["freq"] != freq:
            raise ValueError(f"state was built with windows of {doc['freq']}, configuration says {freq}")
        return cls(
            freq=freq,
            lateness=lateness,
            next_start=doc["next_start"],
            residual=ResidualState.from_dict(doc["residual"]),
            outbox=list(doc["outbox"]),
            expected=set(doc["expected"]),
            first_wall=doc["first_wall"],
            idle_seconds=float(doc["idle_seconds"]),
            taken={sid: {int(s): int(c) for s, c in t} for sid, t in doc["taken"].items()},
        )
