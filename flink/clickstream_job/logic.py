"""The job's operators as plain Python around core calls: no PyFlink import, so they are unit-tested in the
main virtualenv and the Flink operators in :mod:`.job` stay a few lines each.

* :func:`decode` is the clicks stream's one decoder (:func:`clickstream_anomaly.records.decode_click_record`:
  a single click or an aggregated record, through its tuple fast path
  :func:`clickstream_anomaly.click_tuples.decode_click_tuples`) as ``(ts_ns, user, page)`` tuples and error reasons,
  with the Lambda engine's event-time policy
  (:class:`~clickstream_anomaly.streaming.eventtime.EventClock`) applied before any watermark.
* :class:`OpenWindows` is one key's open windows: the exact user set and clicks per page of each window,
  Flink's allowed-lateness rules, and closing in time order with empty windows filled in, the clicks scaled
  for a sampled source, the residual from the core's :class:`~clickstream_anomaly.features.ResidualState`
  and ``page_clicks`` by the core's rule (:func:`~clickstream_anomaly.records.top_pages`), so the windows
  equal the batch ``features`` and its page counts; its watermark is the minimum over the shards'
  (:class:`~.shards.ShardClocks`).
* :func:`new_detector` / :func:`detect` run the core's streaming detector state
  (:class:`~clickstream_anomaly.streaming.detection.DetectorState`: the time-aware baseline and, when asked,
  the KDA-faithful streaming RCF), the state the detector Lambda keeps, so both engines give the same
  detections.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clickstream_anomaly.baseline import TimeAwareBaseline
from clickstream_anomaly.baseline.pages import PageSettings, PageStream
from clickstream_anomaly.baseline.rules import DetectorRules
from clickstream_anomaly.click_tuples import decode_click_tuples, micros
from clickstream_anomaly.features import ResidualState, freq_ns, lookback_windows, scale_clicks
from clickstream_anomaly.kda import KdaRcfParameters
from clickstream_anomaly.producer import MAX_SKEW_SECONDS
from clickstream_anomaly.records import (
    BASELINE,
    PAGES,
    RCF_STREAMING,
    Click,
    DetectorName,
    Window,
)
from clickstream_anomaly.sources.settings import SourceSettings
from clickstream_anomaly.sources.stream import CLICKS, STREAM_FORMATS, decode_stream_records
from clickstream_anomaly.streaming.aggregation import DEFAULT_ALLOWED_LATENESS, duration_ns, window_page_clicks
from clickstream_anomaly.streaming.detection import (
    DEFAULT_STREAMING_DETECTORS,
    DetectorState,
    new_state,
    streaming_detector_names,
)
from clickstream_anomaly.streaming.eventtime import EventClock
from clickstream_anomaly.windowspec import DEFAULT_FREQ

from .bundles import BUNDLE_MS, BUNDLE_RECORDS
from .shards import NS_PER_MS, WATERMARK_MIN, ShardClocks

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
ClickTuple = tuple[int, str, str]  # (event time in ns since the epoch, user, page)

ACCEPTED = "accepted"
LATE = "late"  # after its window's end, within the allowed lateness: counted in the window
DROPPED = "dropped"  # beyond the allowed lateness: not counted, routed aside


@dataclass(frozen=True)
class JobSettings:
    """The job's settings (MSF application properties, ``--`` options locally).

    ``out_of_orderness`` (seconds) bounds how far a click may arrive behind the newest one without being
    late: the producer's maximum skew. ``allowed_lateness`` is the Lambda engine's. ``idle_timeout``
    (seconds) is how long a shard may send nothing before it stops holding the watermark, and how long the
    watermark waits after a (re)start for shards not seen yet (:class:`~.shards.ShardClocks`).
    ``key`` names the dimension the windows and detectors are keyed by (only ``site`` today).
    ``clicks_format`` is the clicks stream's format (:data:`~clickstream_anomaly.sources.stream.STREAM_FORMATS`,
    as the aggregator's ``CLICKS_FORMAT``); ``source`` the source settings a ``cloudfront-realtime`` stream
    needs (fields, user rules, the shared salt) and its ``sampling_rate``, which scales the windows' clicks
    and page clicks as the aggregator's (:attr:`sampling_rate`). ``bundle_records`` and ``bundle_ms`` bound
    the bundles the JVM hands the Python operator (:mod:`.bundles`): records per bundle, and processing
    time (ms) a record may wait for its bundle to fill. ``detector_rules`` is the detectors' verdict rules as
    JSON (:mod:`clickstream_anomaly.baseline.rules`, the detector Lambda's ``DETECTOR_RULES``; empty: the
    defaults), given to a new detector state and to a restored one (:attr:`rules`).
    """

    freq: str = DEFAULT_FREQ
    out_of_orderness: float = MAX_SKEW_SECONDS
    allowed_lateness: str = DEFAULT_ALLOWED_LATENESS
    idle_timeout: float = 60.0
    site: str = "site"
    key: str = "site"
    detectors: tuple[str, ...] = DEFAULT_STREAMING_DETECTORS
    timezone: str = "UTC"
    random_state: int = 0
    clicks_format: str = CLICKS
    source: SourceSettings | None = None
    bundle_records: int = BUNDLE_RECORDS
    bundle_ms: int = BUNDLE_MS
    detector_rules: str = ""

    def __post_init__(self) -> None:
        try:
            DetectorRules.parse(self.detector_rules)
        except ValueError as exc:
            raise ValueError(f"detector_rules: {exc}") from exc
        try:
            streaming_detector_names(self.detectors)
        except ValueError as exc:
            raise ValueError(f"detectors {exc}") from exc
        if self.key != "site":
            raise ValueError(f"key must be 'site' (per-page keys are not built yet), got {self.key!r}")
        if self.bundle_records < 1 or self.bundle_ms < 1:
            raise ValueError(f"bundle_records and bundle_ms must be >= 1, got {self.bundle_records}, {self.bundle_ms}")
        if self.out_of_orderness < 0 or self.idle_timeout <= 0:
            raise ValueError("out_of_orderness must be >= 0 s and idle_timeout > 0 s")
        freq_ns(self.freq)
        duration_ns(self.allowed_lateness)
        if self.clicks_format not in STREAM_FORMATS:
            raise ValueError(f"clicks_format must be one of {', '.join(STREAM_FORMATS)}, got {self.clicks_format!r}")
        if self.clicks_format != CLICKS and self.source is None:
            raise ValueError(f"clicks_format={self.clicks_format} needs the source settings (fields, salt)")

    @property
    def rules(self) -> DetectorRules:
        return DetectorRules.parse(self.detector_rules)

    @property
    def freq_ns(self) -> int:
        return freq_ns(self.freq)

    @property
    def lateness_ns(self) -> int:
        return duration_ns(self.allowed_lateness)

    @property
    def sampling_rate(self) -> int:
        """Percent of the requests the source logs: the source settings' for a ``cloudfront-realtime``
        stream, else 100 (the project's clicks are not sampled), as the aggregator's
        (:func:`clickstream_anomaly.aws.config.sampling_rate_from_env`)."""
        return 100 if self.clicks_format == CLICKS or self.source is None else self.source.sampling_rate


def decode(
    data: bytes | str,
    clock: EventClock | None = None,
    now: float | None = None,
    *,
    fmt: str = CLICKS,
    source: SourceSettings | None = None,
) -> tuple[list[ClickTuple], list[str], int]:
    """The clicks of one clicks-stream record as ``(ts_ns, user, page)``, one reject per bad click (the JSON
    ``{"reason", "raw"}``, ``raw`` the first 200 characters of the bad click or record) and how many of the
    rejects are ``clock``'s event-time rejections (``now``: the wall clock, s). ``fmt``/``source``: the
    stream's format and source settings, decoded as the aggregator does
    (:func:`~clickstream_anomaly.sources.stream.decode_stream_records`)."""
    if fmt == CLICKS:
        clicks, errors = decode_click_tuples(data)
    else:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        ((found, errors),) = decode_stream_records([raw], fmt, source)
        clicks = [(micros(c.timestamp), c.user, c.page) for c in found]
    rejects = [json.dumps({"reason": str(e), "raw": e.raw}, separators=(",", ":")) for e in errors]
    if clock is None:
        return [(us * 1000, user, page) for us, user, page in clicks], rejects, 0
    kept = []
    for us, user, page in clicks:
        why = clock.reason(us / 1_000_000, now)  # = datetime.timestamp(): the same division
        if why is None:
            kept.append((us * 1000, user, page))
        else:
            click = Click(_EPOCH + timedelta(microseconds=us), user, page)
            rejects.append(json.dumps({"reason": why, "raw": click.to_json()[:200]}, separators=(",", ":")))
    return kept, rejects, len(clicks) - len(kept)


def _ns(ts: datetime) -> int:
    return ((ts - _EPOCH) // _US) * 1000


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns % 1_000_000_000) // 1000)


#: A journal entry's pages as the job before page counts wrote them: the pages new to the window, no counts.
PagesSeen = list[str]
#: One journal entry: the watermark (ns) after a record; per window it touched, ``(start, clicks, late
#: clicks, users new to the window, clicks per page)`` (the record's clicks per page: a ``dict``); and
#: ``(shard, newest event time)`` pairs (the record's shard, or every shard in a snapshot). A key's open
#: windows and shard clocks are the replay of its journal (:meth:`OpenWindows.replay`), so the job's state
#: only ever appends what a record added. The job before page counts wrote the pages *new to the window*
#: there (a ``list``): such an entry replays with the window's page counts unknown (:data:`PagesSeen`).
JournalEntry = tuple[
    int, list[tuple[int, int, int, list[str], dict[str, int] | PagesSeen]], tuple[tuple[str, int], ...]
]
#: The shards of a source with one unnamed split (the default of :meth:`OpenWindows.for_settings`).
ONE_SPLIT = ("",)


@dataclass
class OpenWindows:
    """One key's windows not yet emitted, with Flink's event-time rules (times in ns).

    The watermark is the minimum over the shards of Flink's bounded out-of-orderness one (``newest event
    time - out_of_orderness - 1 ms``; :class:`~.shards.ShardClocks`: idle shards aside), moved after each
    record (:meth:`add_record`), so every click of a record is judged against the watermark before it. A
    window ``[s, s + freq)`` is *late* once the watermark reaches its last instant ``s + freq - 1 ms`` and
    *closed* once it reaches ``s + freq - 1 ms + allowed_lateness`` (Flink's ``allowedLateness``). A click
    for an open window is counted (and reported late when it is); a click for a closed window is dropped.
    A window keeps its clicks per page; it comes out with ``page_clicks`` = its
    :data:`~clickstream_anomaly.records.PAGES_PER_WINDOW` most clicked pages
    (:func:`~clickstream_anomaly.records.top_pages` of the raw counts, then each scaled by
    ``sampling_rate``), or ``None`` when part of its clicks came from a journal entry without counts
    (state written by the job before page counts: :data:`PagesSeen`), never partial counts.
    """

    freq: int
    lateness: int
    lookback: int
    clocks: ShardClocks = field(default_factory=lambda: ShardClocks(0, 60.0, frozenset(ONE_SPLIT)))
    sampling_rate: int = 100  # percent of the requests the source logs (configuration, not state)
    # start -> [clicks, users set, clicks per page, late clicks, whether the page counts are known]
    open: dict[int, list] = field(default_factory=dict)
    next_start: int | None = None  # the first window not yet emitted
    watermark: int = WATERMARK_MIN  # ns
    first_close: int = 2**63  # the watermark (ns) at which the first open window closes
    residual: ResidualState = field(init=False)

    def __post_init__(self) -> None:
        self.residual = ResidualState(self.lookback)

    @classmethod
    def for_settings(
        cls, settings: JobSettings, shards: Iterable[str] | None = ONE_SPLIT, now: float = 0.0
    ) -> OpenWindows:
        """Empty windows for ``settings``; ``shards`` the source's shards when known (``None``: discovered, as
        Kinesis shards are), ``now`` the wall time (s) they start at."""
        known = None if shards is None else frozenset(shards)
        clocks = ShardClocks(int(settings.out_of_orderness * 1000), settings.idle_timeout, known, now)
        return cls(
            settings.freq_ns, settings.lateness_ns, lookback_windows(settings.freq), clocks, settings.sampling_rate
        )

    def start_of(self, ts_ns: int) -> int:
        return (ts_ns // self.freq) * self.freq

    def close_time(self, start: int) -> int:
        """The watermark (ns) at which the window starting at ``start`` closes."""
        return start + self.freq - NS_PER_MS + self.lateness

    def add(self, click: ClickTuple, watermark_ns: int) -> str:
        """Count ``click`` against ``watermark_ns`` unless its window is closed; :data:`ACCEPTED`,
        :data:`LATE` or :data:`DROPPED`."""
        outcome, _, _ = self._count(click, watermark_ns)
        return outcome

    def _count(self, click: ClickTuple, watermark_ns: int) -> tuple[str, bool, bool]:
        """``(outcome, user new to the window, page new to the window)``."""
        ts, user, page = click
        start = (ts // self.freq) * self.freq
        if (self.next_start is not None and start < self.next_start) or watermark_ns >= self.close_time(start):
            return DROPPED, False, False
        part = self._window(start)
        part[0] += 1
        users, pages = part[1], part[2]
        new_user, new_page = user not in users, page not in pages
        if new_user:
            users.add(user)
        pages[page] = pages.get(page, 0) + 1
        late = watermark_ns >= start + self.freq - NS_PER_MS
        part[3] += late
        return (LATE if late else ACCEPTED), new_user, new_page

    def add_record(
        self, clicks: list[ClickTuple], shard: str = "", now: float = 0.0
    ) -> tuple[JournalEntry, list[ClickTuple], int, list[int]]:
        """Count one record's clicks (:meth:`count_record`); returns the record's journal entry, its dropped
        clicks, how many were counted late, and the starts of the windows it opened."""
        parts: dict[int, list] = {}
        dropped, late, opened = self.count_record(clicks, shard, now, parts)
        return self.entry(parts, (shard,)), dropped, late, opened

    def count_record(
        self, clicks: list[ClickTuple], shard: str, now: float, parts: dict[int, list]
    ) -> tuple[list[ClickTuple], int, list[int]]:
        """Count one record's clicks (from ``shard``, at wall time ``now``, s) against the watermark before it,
        then move ``shard``'s clock on by their newest event time and the watermark to what the shards allow.
        What they added goes into ``parts`` (per window start, for :meth:`entry`: several records may add to
        one ``parts``). Returns the dropped clicks, how many were counted late, and the starts of the
        windows it opened. (:meth:`add`'s rules, inlined: this is the job's per-click loop.)"""
        wm, freq, lateness, next_start, windows = self.watermark, self.freq, self.lateness, self.next_start, self.open
        dropped: list[ClickTuple] = []
        opened: list[int] = []
        late = 0
        newest = WATERMARK_MIN
        for click in clicks:
            ts, user, page = click
            if ts > newest:
                newest = ts
            start = ts - ts % freq
            end = start + freq - NS_PER_MS  # the window's last instant
            if (next_start is not None and start < next_start) or wm >= end + lateness:
                dropped.append(click)
                continue
            window = windows.get(start)
            if window is None:
                window = windows[start] = [0, set(), {}, 0, True]
                opened.append(start)
                self.first_close = min(self.first_close, end + lateness)
            part = parts.get(start)
            if part is None:
                part = parts[start] = [0, 0, [], {}]
            window[0] += 1
            part[0] += 1
            if wm >= end:
                window[3] += 1
                part[1] += 1
                late += 1
            users = window[1]
            if user not in users:
                users.add(user)
                part[2].append(user)
            pages = window[2]
            pages[page] = pages.get(page, 0) + 1
            pages = part[3]
            pages[page] = pages.get(page, 0) + 1
        moved = self.clocks.watermark(shard, newest if clicks else None, now)
        if moved > wm:
            self.watermark = moved
        return dropped, late, opened

    def entry(self, parts: dict[int, list], shards: Iterable[str]) -> JournalEntry:
        """The journal entry of what records from ``shards`` added (``parts``, :meth:`count_record`'s):
        replaying it does what those records did (sums, unions and the newest times commute)."""
        newest = self.clocks.newest
        shard_clocks = tuple((shard, newest[shard]) for shard in shards if shard in newest)
        return (self.watermark, [(s, p[0], p[1], p[2], p[3]) for s, p in parts.items()], shard_clocks)

    def advance(self, now: float) -> bool:
        """Move the watermark to what the shards allow at wall time ``now`` without a record (the hold ended,
        a shard went idle); whether it moved."""
        moved = self.clocks.current(now)
        if moved > self.watermark:
            self.watermark = moved
            return True
        return False

    def _window(self, start: int) -> list:
        """The open window starting at ``start``, opened if need be."""
        part = self.open.get(start)
        if part is None:
            part = self.open[start] = [0, set(), {}, 0, True]
            self.first_close = min(self.first_close, self.close_time(start))
        return part

    def replay(self, entry: JournalEntry) -> None:
        """Apply a journal entry (a record's, or :meth:`snapshot`'s) to these windows. An entry of the job
        before page counts (:data:`PagesSeen`) keeps the window's distinct pages exact and marks its page
        counts unknown."""
        self.watermark = max(self.watermark, entry[0])
        self.clocks.restore(entry[2])
        for start, clicks, late, users, pages in entry[1]:
            part = self._window(start)
            part[0] += clicks
            part[1].update(users)
            counts = part[2]
            if isinstance(pages, dict):
                for page, n in pages.items():
                    counts[page] = counts.get(page, 0) + n
            else:
                for page in pages:
                    counts.setdefault(page, 0)
                part[4] = False
            part[3] += late

    def snapshot(self) -> JournalEntry:
        """The open windows as one journal entry (what the journal is compacted to when windows close); a
        window whose page counts are unknown keeps only its pages' names (:data:`PagesSeen`)."""
        parts = [(s, p[0], p[3], list(p[1]), dict(p[2]) if p[4] else list(p[2])) for s, p in sorted(self.open.items())]
        return (self.watermark, parts, self.clocks.items())

    def emitted(self) -> dict:
        """What :meth:`close` changes besides the open windows: the next window to emit and the residual's
        history (small; restored with :meth:`restore_emitted`)."""
        return {"next_start": self.next_start, "residual": self.residual.to_dict()}

    def restore_emitted(self, data: dict) -> None:
        self.next_start = data["next_start"]
        self.residual = ResidualState.from_dict(data["residual"])

    def close(self, watermark_ns: int) -> list[tuple[Window, int]]:
        """Emit, in time order, every window closed at ``watermark_ns`` from the first not yet emitted, empty
        ones included (``page_clicks`` ``{}``): ``(window, late clicks counted in it)``."""
        closed = [s for s in self.open if self.close_time(s) <= watermark_ns]
        if not closed:
            return []
        first = min(closed) if self.next_start is None else self.next_start
        out = []
        rate = self.sampling_rate
        for start in range(first, max(closed) + self.freq, self.freq):
            clicks, users, pages, late, known = self.open.pop(start, (0, (), {}, 0, True))
            clicks = int(scale_clicks(clicks, rate))  # the one scaling (features.py)
            residual = self.residual.residual(clicks, len(users))
            top = window_page_clicks(pages, rate) if known else None
            out.append((Window(_dt(start), len(pages), len(users), clicks, residual, page_clicks=top), late))
        self.next_start = max(closed) + self.freq
        self.first_close = min((self.close_time(s) for s in self.open), default=2**63)
        return out


def new_detector(settings: JobSettings) -> DetectorState:
    """A fresh detector state with the detectors ``settings`` names and its rules (the detector Lambda's
    :func:`new_state`)."""
    names = {DetectorName(d) for d in settings.detectors}
    params = KdaRcfParameters(with_directionality=True) if RCF_STREAMING in names else None
    rules = settings.rules
    baseline = (
        TimeAwareBaseline(timezone=settings.timezone, window=settings.freq, **rules.baseline_params())
        if BASELINE in names
        else None
    )
    page_settings = PageSettings(timezone=settings.timezone, freq=settings.freq, **rules.page_params())
    pages = PageStream(page_settings) if PAGES in names else None
    return new_state(params, settings.random_state, baseline, pages)


def detect(state: DetectorState, window: Window) -> list[str]:
    """Score-then-learn ``window``; its detections as the JSON the alerter reads. Flink's checkpoints make
    the state exactly-once, so the Lambda engine's outbox is emptied at once."""
    detections = state.step([window])
    state.outbox.clear()
    return [d.to_json() for d in detections]
