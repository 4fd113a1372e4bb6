"""Streaming 10-minute windows from clicks that arrive on several shards, late or not at all.

The definitions are those of :mod:`clickstream_anomaly.features` (``urls`` distinct pages, ``users``
distinct users, ``clicks`` events, ``residual = clicks - users * R`` with ``R`` the trailing day's clicks
per user, kept by the core's :class:`~clickstream_anomaly.features.ResidualState`; windows aligned to
the Unix epoch), and
on the same clicks the emitted windows are identical to the batch computation.

* **Mergeable partial windows.** :class:`PartialWindow` keeps the *set* of users and the clicks per
  page, so partials built from different shards (or batches) merge exactly: a user clicking on two
  shards counts once. A closed window carries its ``page_clicks`` (the per-page detector's input).
* **Watermark and allowed lateness.** Each shard has an event-time clock (the newest click time seen
  on it); the watermark is the *slowest* active shard's clock, so a shard that is read behind the others
  (a fast replay, a backlog) does not make the others close its windows. The shards of the stream are
  given by the caller when known (``shards=``), and a shard that sent nothing for ``idle_seconds`` of wall
  time stops holding the watermark back. A window ``[s, s + freq)`` closes when the watermark reaches
  ``s + freq + lateness``; until then late clicks are counted. Clicks for a closed window are dropped
  and counted (``late_dropped``), never silently.
* **Empty windows.** Closing emits every window from the last emitted one up to the watermark, so a
  window with no clicks comes out with zeros. When no clicks arrive at all, the scheduled tick
  (:meth:`AggregatorState.close` with ``now``) advances each shard's clock by the wall time elapsed since
  its last click arrived, so an outage's windows close too.
* **Exactly-once effect on retries.** Per shard the last applied sequence number is kept; a re-delivered
  record (Lambda retries from the lowest failed one) is skipped. Closed windows go to an *outbox* in the
  state, written before they are sent and removed after, so a crash between the two re-sends the same
  windows (consumers ignore a ``window_start`` they have seen), and never loses one.
* **Event-time policy** (:mod:`clickstream_anomaly.streaming.eventtime`). Each click is checked against
  its shard's event clock (moved on by the wall time since), the earliest accepted time and, when given,
  the wall clock: a click too far ahead (a day, the year 2100) or before 2000 is *rejected*. A rejected
  click is not applied (the clock does not move), is counted, and waits in the state's ``rejected`` outbox
  until :func:`run_aggregator`'s ``reject`` has sent it to the failure destination. A late click (its
  window already closed) is counted in ``late_dropped`` and dropped from the windows, as before: it is
  normal traffic, it stays in the data lake, and it would make the failure queue's alarm meaningless.
* **Bounded state.** Only open windows (``lateness / freq + 1`` of them in steady state, capped at
  :data:`MAX_OPEN_WINDOWS`) and the outbox are kept; the state is a versioned, compressed JSON document
  (:mod:`clickstream_anomaly.persist`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import persist
from ..features import ResidualState, freq_ns, lookback_windows, scale_clicks
from ..records import Click, Window, format_timestamp, top_pages
from ..windowspec import DEFAULT_FREQ
from .eventtime import (
    DEFAULT_POLICY,
    EventTimePolicy,
    Rejection,
    acknowledge_rejections,
    advanced_clock,
    queue_rejections,
)
from .state import Store, transact

MAX_OPEN_WINDOWS = 1_000
DEFAULT_ALLOWED_LATENESS = "10min"  # how long the aggregator waits for late clicks (cdk.json allowed_lateness)
STATE_KIND = "streaming.aggregator"
STATE_VERSION = 2  # 1: gzip-compressed JSON
NS = 1_000_000_000
COMPONENT = "aggregator"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(ts: datetime) -> int:
    """Exact ns since the epoch of an aware datetime (microsecond resolution)."""
    return ((ts - _EPOCH) // timedelta(microseconds=1)) * 1000


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS, UTC).replace(microsecond=(ns % NS) // 1000)


@dataclass
class PartialWindow:
    """The clicks of one window seen so far: a count, the distinct users and the clicks per page.

    ``pages_exact`` is false for a window restored from a state written before the clicks per page were
    kept (it knows its pages, not their clicks): its closed window carries no ``page_clicks``.
    """

    start: int  # ns since epoch
    clicks: int = 0
    users: set[str] = field(default_factory=set)
    pages: dict[str, int] = field(default_factory=dict)
    pages_exact: bool = True

    def add(self, click: Click) -> None:
        self.clicks += 1
        self.users.add(click.user)
        self.pages[click.page] = self.pages.get(click.page, 0) + 1

    def merge(self, other: PartialWindow) -> None:
        """Fold ``other`` (same window) into this one; exact for the distinct counts."""
        if other.start != self.start:
            raise ValueError("can only merge partials of the same window")
        self.clicks += other.clicks
        self.users |= other.users
        add_page_clicks(self.pages, other.pages)
        self.pages_exact = self.pages_exact and other.pages_exact

    def copy(self) -> PartialWindow:
        return PartialWindow(self.start, self.clicks, set(self.users), dict(self.pages), self.pages_exact)

    def to_window(self, residual: float, clicks: int | None = None, sampling_rate: int = 100) -> Window:
        """The closed window's features; ``residual`` comes from the caller's :class:`ResidualState`,
        ``clicks`` (default: the count) is the scaled count of a sampled source (``sampling_rate``)."""
        count = self.clicks if clicks is None else clicks
        pages = window_page_clicks(self.pages, sampling_rate) if self.pages_exact else None
        return Window(_dt(self.start), len(self.pages), len(self.users), count, residual, page_clicks=pages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "clicks": self.clicks,
            "users": sorted(self.users),
            "pages": dict(sorted(self.pages.items())),
            "pages_exact": self.pages_exact,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartialWindow:
        pages, exact = page_clicks_from_state(data["pages"])
        exact = exact and bool(data.get("pages_exact", True))
        return cls(int(data["start"]), int(data["clicks"]), set(data["users"]), pages, exact)


def add_page_clicks(into: dict[str, int], other: dict[str, int]) -> None:
    """Add ``other``'s clicks per page to ``into`` (in place)."""
    for page, n in other.items():
        into[page] = into.get(page, 0) + n


def window_page_clicks(pages: dict[str, int], sampling_rate: int = 100) -> dict[str, int]:
    """A closed window's ``page_clicks``: its most clicked pages (:func:`~clickstream_anomaly.records.top_pages`,
    on the counts as logged), each scaled like the window's clicks (:func:`scale_clicks`)."""
    return {p: int(scale_clicks(c, sampling_rate)) for p, c in top_pages(pages).items()}


def page_clicks_from_state(value: list[str] | dict[str, int]) -> tuple[dict[str, int], bool]:
    """The pages of a saved partial window and whether their clicks are known: a list of pages (a state
    from before the clicks per page were kept) gives each page 0 clicks and ``False``."""
    if isinstance(value, dict):
        return {str(p): int(c) for p, c in value.items()}, True
    return dict.fromkeys(map(str, value), 0), False


def build_partials(clicks: Iterable[Click], freq: str = DEFAULT_FREQ) -> dict[int, PartialWindow]:
    """Partial windows of a batch of clicks, keyed by window start (ns)."""
    step = freq_ns(freq)
    out: dict[int, PartialWindow] = {}
    for click in clicks:
        start = (_ns(click.timestamp) // step) * step
        part = out.get(start)
        if part is None:
            part = out[start] = PartialWindow(start)
        part.add(click)
    return out


def empty_window(start_ns: int, residual: float = 0.0) -> Window:
    return Window(_dt(start_ns), 0, 0, 0, residual, page_clicks={})


def watermark(
    shard_high: dict[str, int],
    shard_wall: dict[str, float | None],
    expected: Iterable[str],
    first_wall: float | None,
    idle_seconds: float,
    now: float | None,
) -> int | None:
    """The slowest active shard's event clock (ns), each moved on by the wall time since its last click.

    ``shard_high`` is each shard's newest click time (ns), ``shard_wall`` the wall clock (s) of that
    arrival, ``expected`` the stream's shards when known. A shard that sent nothing for ``idle_seconds`` of
    wall time does not hold the watermark back; when every shard is idle (an outage) the newest clock
    counts. ``None`` while an expected shard has sent nothing yet (and is not idle) or nothing was seen.
    """
    if not shard_high:
        return None
    walls = [w for w in shard_wall.values() if w is not None]
    ref = now if now is not None else (max(walls) if walls else None)

    def clock(sid: str) -> int:
        wall = shard_wall.get(sid)
        ahead = max(0.0, now - wall) if (now is not None and wall is not None) else 0.0
        return shard_high[sid] + int(ahead * NS)

    active: list[int | None] = []
    for sid in sorted(set(shard_high) | set(expected)):
        wall = shard_wall.get(sid, first_wall)
        if ref is not None and wall is not None and ref - wall > idle_seconds:
            continue  # idle shard: does not hold the watermark back
        active.append(clock(sid) if sid in shard_high else None)
    if not active:  # every shard idle (an outage): wall time moves the clocks on
        return max(clock(sid) for sid in shard_high)
    if any(a is None for a in active):
        return None
    return min(a for a in active if a is not None)


def duration_ns(text: str) -> int:
    """Nanoseconds of a duration such as ``10min`` where ``0`` is allowed (the allowed lateness)."""
    return 0 if text.strip() in ("0", "0s", "0min") else freq_ns(text)


def last_closable(mark: int, step: int, lateness_ns: int) -> int:
    """The start (ns) of the last window a watermark ``mark`` closes (``mark >= start + step + lateness``)."""
    return ((mark - lateness_ns - step) // step) * step


class WindowEmitter:
    """What the aggregator and the merge step share: the window length and allowed lateness in ns, the
    residual's lookback, and the outbox of closed windows not sent yet (``freq``, ``lateness``,
    ``residual`` and ``outbox`` are fields of the dataclasses that use it)."""

    freq: str
    lateness: str
    residual: ResidualState
    outbox: list[dict[str, Any]]

    def __post_init__(self) -> None:
        if not self.residual.history:
            self.residual.lookback = lookback_windows(self.freq)

    @property
    def step(self) -> int:
        return freq_ns(self.freq)

    @property
    def lateness_ns(self) -> int:
        return duration_ns(self.lateness)

    def outbox_windows(self) -> list[Window]:
        return [Window.from_mapping(d) for d in self.outbox]

    def acknowledge(self, windows: Iterable[Window]) -> None:
        """Remove sent windows from the outbox."""
        sent = {format_timestamp(w.window_start) for w in windows}
        self.outbox = [d for d in self.outbox if d["window_start"] not in sent]


@dataclass
class AggregatorState(WindowEmitter):
    """Everything the aggregator remembers between invocations (see the module docstring)."""

    freq: str = DEFAULT_FREQ
    lateness: str = DEFAULT_ALLOWED_LATENESS
    open: dict[int, PartialWindow] = field(default_factory=dict)
    checkpoints: dict[str, int] = field(default_factory=dict)
    shard_high: dict[str, int] = field(default_factory=dict)  # newest click time per shard (ns)
    shard_wall: dict[str, float | None] = field(default_factory=dict)  # wall clock (s) of that arrival
    expected: set[str] = field(default_factory=set)  # shards of the stream, when the caller knows them
    first_wall: float | None = None
    idle_seconds: float = 60.0
    next_start: int | None = None  # first window not yet closed (ns)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    late_dropped: int = 0
    duplicates_skipped: int = 0
    residual: ResidualState = field(default_factory=ResidualState)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # rejections not sent yet (event-time policy)
    rejections_overflow: int = 0  # rejections dropped because the outbox was full (counted, never silent)
    sampling_rate: int = 100  # percent of the requests the source logs (configuration, not saved)

    def accept(self, shard: str, sequence: str | int) -> bool:
        """True when ``sequence`` is new for ``shard`` (and records it); False for a re-delivery."""
        seq = int(sequence)
        last = self.checkpoints.get(shard)
        if last is not None and seq <= last:
            self.duplicates_skipped += 1
            return False
        self.checkpoints[shard] = seq
        return True

    def merge(self, partials: dict[int, PartialWindow]) -> int:
        """Fold partial windows in; returns how many clicks were too late (their window was closed)."""
        late = 0
        for start, part in sorted(partials.items()):
            if self.next_start is not None and start < self.next_start:
                late += part.clicks
                continue
            mine = self.open.get(start)
            if mine is None:
                self.open[start] = part.copy()
            else:
                mine.merge(part)
        self.late_dropped += late
        return late

    def observe(self, shard: str, newest_click_ns: int, now: float | None) -> None:
        """Move ``shard``'s event clock to ``newest_click_ns`` if newer; ``now`` is the wall clock (s)."""
        if self.first_wall is None:
            self.first_wall = now
        if shard not in self.shard_high or newest_click_ns > self.shard_high[shard]:
            self.shard_high[shard] = newest_click_ns
            self.shard_wall[shard] = now

    def event_clock(self, shard: str, now: float | None) -> float | None:
        """``shard``'s event clock in seconds (its newest click, moved on by the wall time since); a shard
        with no click yet takes the newest clock of the others; ``None`` before the first click at all."""
        if shard in self.shard_high:
            return advanced_clock(self.shard_high[shard] / NS, self.shard_wall.get(shard), now)
        clocks = [advanced_clock(h / NS, self.shard_wall.get(sid), now) for sid, h in self.shard_high.items()]
        known = [c for c in clocks if c is not None]
        return max(known) if known else None

    def screen(
        self,
        shard: str,
        records: Iterable[tuple[str, list[Click]]],
        *,
        now: float | None,
        policy: EventTimePolicy = DEFAULT_POLICY,
    ) -> tuple[list[Click], list[Rejection]]:
        """Split one shard's new ``(sequence number, clicks)`` records into the clicks to apply and the
        ones the event-time policy rejects; returns ``(accepted, rejections)``. The clock moves with each
        accepted click, so a batch may span any time without a gap of more than ``policy.max_ahead``.
        Late clicks are accepted here; :meth:`merge` counts and drops them."""
        clock = self.event_clock(shard, now)
        accepted: list[Click] = []
        rejections: list[Rejection] = []
        for seq, clicks in records:
            for click in clicks:
                t = click.timestamp.timestamp()
                reason = policy.reason(t, clock=clock, now=now)
                if reason is not None:
                    source = {"shard": shard, "sequence_number": str(seq)}
                    rejections.append(Rejection(COMPONENT, reason, click.to_dict(), source))
                    continue
                accepted.append(click)
                clock = t if clock is None else max(clock, t)
        return accepted, rejections

    def reject(self, rejections: list[Rejection]) -> None:
        """Queue rejections for the failure destination (:func:`run_aggregator` sends them)."""
        self.rejections_overflow += queue_rejections(self.rejected, rejections)

    def add_clicks(self, clicks: list[Click], *, shard: str = "shard", now: float | None = None) -> int:
        """Merge a batch of one shard's clicks (already de-duplicated); returns the late-dropped count."""
        if not clicks:
            return 0
        late = self.merge(build_partials(clicks, self.freq))
        self.observe(shard, max(_ns(c.timestamp) for c in clicks), now)
        return late

    def watermark(self, now: float | None = None) -> int | None:
        """The event-time clock (ns): the slowest active shard's clock (see the module docstring).

        ``None`` while a known shard has sent nothing yet (and is not idle) or nothing was seen at all.
        """
        return watermark(self.shard_high, self.shard_wall, self.expected, self.first_wall, self.idle_seconds, now)

    def close(self, now: float | None = None, *, until: int | None = None) -> list[Window]:
        """Close every window the watermark (or ``until``, a window-start bound in ns) has passed.

        Closed windows, empty ones included, are appended to the outbox and returned in time order.
        """
        step = self.step
        if until is None:
            mark = self.watermark(now)
            if mark is None:
                return []
            # Window s is closed when mark >= s + step + lateness; the last such s:
            last = last_closable(mark, step, self.lateness_ns)
        else:
            last = (until // step) * step
        if self.next_start is None:
            if not self.open:
                return []
            self.next_start = min(self.open)
        if len(self.open) > MAX_OPEN_WINDOWS:
            # Bounded state: force-close the oldest windows beyond the cap.
            last = max(last, sorted(self.open)[len(self.open) - MAX_OPEN_WINDOWS - 1])
        out: list[Window] = []
        start = self.next_start
        while start <= last:
            part = self.open.pop(start, None)
            clicks, users = (part.clicks, len(part.users)) if part is not None else (0, 0)
            clicks = int(scale_clicks(clicks, self.sampling_rate))  # the one scaling (features.py)
            residual = self.residual.residual(clicks, users)
            out.append(
                part.to_window(residual, clicks, self.sampling_rate)
                if part is not None
                else empty_window(start, residual)
            )
            start += step
        self.next_start = start
        self.outbox.extend(w.to_stream_dict() for w in out)
        return out

    # ---- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 2,  # 2: the open windows' pages with their clicks (1: a list of pages)
            "freq": self.freq,
            "lateness": self.lateness,
            "open": [p.to_dict() for _, p in sorted(self.open.items())],
            "checkpoints": {k: str(v) for k, v in self.checkpoints.items()},
            "shard_high": self.shard_high,
            "shard_wall": self.shard_wall,
            "expected": sorted(self.expected),
            "first_wall": self.first_wall,
            "idle_seconds": self.idle_seconds,
            "next_start": self.next_start,
            "outbox": self.outbox,
            "late_dropped": self.late_dropped,
            "duplicates_skipped": self.duplicates_skipped,
            "residual": self.residual.to_dict(),
            "rejected": self.rejected,
            "rejections_overflow": self.rejections_overflow,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AggregatorState:
        if data.get("version") not in (1, 2):  # the document's schema (the container has its own version)
            raise ValueError(f"unknown aggregator state version {data.get('version')!r}")
        parts = [PartialWindow.from_dict(p) for p in data["open"]]
        return cls(
            freq=data["freq"],
            lateness=data["lateness"],
            open={p.start: p for p in parts},
            checkpoints={k: int(v) for k, v in data["checkpoints"].items()},
            shard_high={k: int(v) for k, v in data["shard_high"].items()},
            shard_wall=dict(data["shard_wall"]),
            expected=set(data["expected"]),
            first_wall=data["first_wall"],
            idle_seconds=float(data["idle_seconds"]),
            next_start=data["next_start"],
            outbox=list(data["outbox"]),
            late_dropped=int(data["late_dropped"]),
            duplicates_skipped=int(data["duplicates_skipped"]),
            residual=ResidualState.from_dict(data["residual"]),
            rejected=list(data.get("rejected", [])),
            rejections_overflow=int(data.get("rejections_overflow", 0)),
        )

    def to_bytes(self) -> bytes:
        """A versioned state (:mod:`clickstream_anomaly.persist`, kind ``streaming.aggregator``): the
        compressed JSON of :meth:`to_dict` (deterministic: sorted sets and keys)."""
        return persist.dumps_document(STATE_KIND, STATE_VERSION, self.to_dict())

    @classmethod
    def from_bytes(
        cls, data: bytes | None, *, freq: str = DEFAULT_FREQ, lateness: str = DEFAULT_ALLOWED_LATENESS
    ) -> AggregatorState:
        """Decode :meth:`to_bytes`; ``None`` (no state yet) gives a fresh state with ``freq``/``lateness``."""
        if data is None:
            return cls(freq=freq, lateness=lateness)
        if data[:2] == b"\x1f\x8b":  # version 1: gzip-compressed JSON
            document = json.loads(gzip.decompress(data))
        else:
            _, document = persist.loads_document(data, STATE_KIND, versions={STATE_VERSION})
        state = cls.from_dict(document)
        if state.freq != freq:
            raise ValueError(f"state was built with windows of {state.freq}, configuration says {freq}")
        state.lateness = lateness
        return state


@dataclass
class BatchStats:
    """What one aggregator invocation did."""

    clicks: int = 0
    duplicates: int = 0
    late_dropped: int = 0
    windows_closed: int = 0
    windows_sent: int = 0
    rejected: int = 0  # clicks rejected by the event-time policy, this batch
    rejections: list[Rejection] = field(default_factory=list)  # those rejections (for the log)
    rejections_sent: int = 0


ClickRecord = tuple[str, str, Click | Sequence[Click]]  # (shard id, sequence number, its click(s))


def apply_batch(
    state: AggregatorState,
    records: Iterable[ClickRecord],
    *,
    now: float | None = None,
    shards: Iterable[str] = (),
    policy: EventTimePolicy = DEFAULT_POLICY,
) -> BatchStats:
    """Apply ``(shard_id, sequence_number, clicks)`` records and close what can be closed.

    ``clicks`` is one :class:`Click` or the clicks of an aggregated record (in order). Re-delivered records
    are skipped per shard (``duplicates`` counts their clicks). ``shards`` names the stream's shards when
    known. Clicks outside ``policy`` are rejected (``stats.rejected``,
    the state's ``rejected`` outbox). Pure: the same state and records give the same result, so it can be
    re-applied after a write conflict.
    """
    stats = BatchStats()
    state.expected |= set(shards)
    fresh: dict[str, list[tuple[str, list[Click]]]] = {}
    for shard, seq, item in sorted(records, key=lambda r: (r[0], int(r[1]))):
        clicks = [item] if isinstance(item, Click) else list(item)
        if state.accept(shard, seq):
            fresh.setdefault(shard, []).append((seq, clicks))
        else:
            stats.duplicates += len(clicks)
    if now is not None and state.first_wall is None:
        state.first_wall = now
    for shard, recs in fresh.items():
        clicks, rejections = state.screen(shard, recs, now=now, policy=policy)
        stats.rejected += len(rejections)
        stats.rejections.extend(rejections)
        state.reject(rejections)
        stats.clicks += len(clicks)
        stats.late_dropped += state.add_clicks(clicks, shard=shard, now=now)
    stats.windows_closed = len(state.close(now))
    return stats


def _decoder(freq: str, lateness: str, sampling_rate: int = 100) -> Callable[[bytes | None], AggregatorState]:
    def decode(raw: bytes | None) -> AggregatorState:
        state = AggregatorState.from_bytes(raw, freq=freq, lateness=lateness)
        state.sampling_rate = sampling_rate
        return state

    return decode


def run_aggregator(  # noqa: PLR0913  (the settings are keyword-only)
    store: Store,
    records: Iterable[ClickRecord],
    *,
    send: Callable[[list[Window]], None],
    freq: str = DEFAULT_FREQ,
    lateness: str = DEFAULT_ALLOWED_LATENESS,
    now: float | None = None,
    shards: Iterable[str] = (),
    reject: Callable[[list[Rejection]], None] | None = None,
    policy: EventTimePolicy = DEFAULT_POLICY,
    sampling_rate: int = 100,
) -> BatchStats:
    """One aggregator invocation: apply the records (or none, for a scheduled tick), close windows, send them.

    ``sampling_rate`` (percent of the requests the source logs) scales the closed windows' ``clicks``.

    ``send(windows)`` writes windows to the features stream; it runs after the state (with the windows in
    its outbox) is saved, and the outbox is cleared after it returns. If it raises, the windows stay in the
    outbox and the next invocation sends them again. ``reject(rejections)`` sends the rejected clicks to the
    failure destination the same way (``None``: they stay in the state's outbox).
    """
    records, shards = list(records), list(shards)
    decode = _decoder(freq, lateness, sampling_rate)
    state, stats = transact(
        store,
        decode,
        AggregatorState.to_bytes,
        lambda st: apply_batch(st, records, now=now, shards=shards, policy=policy),
    )
    if state.outbox:
        windows = state.outbox_windows()
        send(windows)
        transact(store, decode, AggregatorState.to_bytes, lambda st: st.acknowledge(windows))
        stats.windows_sent = len(windows)
    if state.rejected and reject is not None:
        pending = [Rejection.from_dict(d) for d in state.rejected]
        reject(pending)
        transact(store, decode, AggregatorState.to_bytes, lambda st: acknowledge_rejections(st.rejected, pending))
        stats.rejections_sent = len(pending)
    return stats
