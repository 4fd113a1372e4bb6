"""The PyFlink pipeline: clicks-stream records -> decoded clicks, event time and 10-minute windows -> detectors.

Every operator is a few lines around :mod:`.logic` (itself a few lines around core calls):

* :class:`Clicks`, keyed by site, takes the clicks-stream records in bundles (joined and keyed in the JVM,
  :func:`keyed_records`, so no Python operator runs before it and it is called once per bundle, not per
  record) and does in one Python operator what a click would otherwise cross three for (docs/flink.md,
  Throughput):

  - decodes each record with the core's one decoder; each bad click goes to the ``malformed`` side output
    with its reason, counted (metric ``MalformedClicks``), and so does a click the event-time policy
    rejects (dated before 2000, ahead of the wall clock or far ahead of the newest one:
    ``EventTimeRejected``), before it could move the watermark;
  - event time per shard (each record comes tagged with its Kinesis shard or file split): each shard's
    clock is Flink's bounded out-of-orderness watermark (the producer's maximum skew) over its own clicks,
    and the key's watermark is the minimum over the shards not idle (:class:`~.shards.ShardClocks`), moved
    after each record, so each click is judged against the watermark before its record and a shard read
    behind the others holds the watermark back instead of losing its clicks as late;
  - exact distinct users and clicks per page per tumbling window, allowed lateness as the Lambda engine's,
    empty windows emitted, the residual, and ``page_clicks`` (the 200 most clicked pages, the batch's rule:
    :class:`~.logic.OpenWindows`) in each window's JSON; clicks beyond the lateness go to the ``late`` side
    output, counted (``LateClicksDropped``; ``LateClicksCounted`` for those within it). Its keyed state is
    a journal that each bundle only appends to (what its records added: users new to a window, clicks per
    page), compacted when windows close, so state cost follows the clicks, not the size of the user sets.
    With a file source, an event-time timer per window closes what is left when Flink's own watermark
    ends the input; the Kinesis source sends no watermark, so there the timers would never fire and are
    not set (open windows stay in state across a restart).
* :class:`Detect`, keyed by site: the core's streaming detector state in keyed state, one detection per
  window and detector, as the alerter reads them; the state takes the job's ``detector_rules``.

:func:`build` wires them between any source and sinks; :mod:`.local` (a file, the mini-cluster) and
:mod:`.msf` (Kinesis, Managed Service for Apache Flink) choose those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pyflink.common import Types
from pyflink.datastream import (
    DataStream,
    KeyedProcessFunction,
    KeyedStream,
    OutputTag,
    RuntimeContext,
    TimeDomain,
)
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor
from pyflink.java_gateway import get_gateway

from clickstream_anomaly.records import Window
from clickstream_anomaly.streaming.detection import DetectorState
from clickstream_anomaly.streaming.eventtime import EventClock

from .bundles import unbundle
from .logic import NS_PER_MS, JobSettings, OpenWindows, decode, detect, new_detector
from .shards import SHARD_SEPARATOR, split_record

MALFORMED = OutputTag("malformed", Types.STRING())
LATE_DROPPED = OutputTag("late", Types.STRING())
WINDOW_STATS = OutputTag("window-stats", Types.STRING())
COUNT_EVERY = 1000  # clicks between updates of the Clicks counter (each update is a call into the JVM)
KEYED_RECORD_TYPE = Types.ROW([Types.STRING(), Types.STRING()])  # (key, bundle of clicks-stream records)
#: The JVM operator that bundles the records (flink/src/main/java; :mod:`.bundles` reads its bundles).
RECORD_BUNDLER = "io.github.clickstream_anomaly.flink.RecordBundler"
#: The jar of our Java classes and the connector, from the application zip's root (the ``jarfile`` run
#: option); in a checkout, under ``build/flink/`` (``make flink-jar``).
JARFILE = "lib/clickstream-flink-connectors.jar"


#: Managed Service for Apache Flink sends a job's own metrics to CloudWatch only under this group ("Use
#: custom metrics with Amazon Managed Service for Apache Flink"); locally it is one more scope level.
MSF_METRIC_GROUP = "kinesisanalytics"


def metrics_group(runtime_context: RuntimeContext) -> Any:
    """The operator's metric group under :data:`MSF_METRIC_GROUP`."""
    return runtime_context.get_metrics_group().add_group(MSF_METRIC_GROUP)


@dataclass
class Streams:
    """The job's outputs: JSON strings each (features, detections and the two kinds of reject)."""

    windows: DataStream
    detections: DataStream
    malformed: DataStream
    late: DataStream
    window_stats: DataStream


class Clicks(KeyedProcessFunction):
    """One key's clicks-stream records, each tagged with its shard (:func:`~.shards.split_record`) -> its
    windows (JSON); bad clicks to :data:`MALFORMED`, clicks beyond the lateness to :data:`LATE_DROPPED`.
    :class:`~.logic.OpenWindows` in memory, rebuilt from the keyed state's journal after a restart.
    ``shards``: the source's shards when known (a file's split), ``None`` when discovered (Kinesis)."""

    def __init__(self, settings: JobSettings, shards: tuple[str, ...] | None) -> None:
        self.settings, self.shards = settings, shards

    def open(self, runtime_context: RuntimeContext) -> None:
        group = metrics_group(runtime_context)
        self.clicks = group.counter("Clicks")
        self.malformed = group.counter("MalformedClicks")
        self.rejected = group.counter("EventTimeRejected")
        self.late = group.counter("LateClicksCounted")
        self.dropped = group.counter("LateClicksDropped")
        self.emitted = group.counter("WindowsEmitted")
        self.journal = runtime_context.get_list_state(ListStateDescriptor("journal", Types.PICKLED_BYTE_ARRAY()))
        self.closed = runtime_context.get_state(ValueStateDescriptor("emitted", Types.PICKLED_BYTE_ARRAY()))
        self.clock = EventClock()  # per subtask; a restart starts it again from the next click
        self.windows: dict[str, OpenWindows] = {}  # per key, the replay of its state
        self.uncounted = 0  # clicks not yet added to the Clicks counter (one call per COUNT_EVERY clicks)
        self.check_at: float | None = None  # the pending processing-time timer (wall time, s)
        self.parts: dict[int, list] = {}  # what the bundle's records added, per window (OpenWindows.entry)
        self.touched: set[str] = set()  # the shards the bundle's records came from

    def close(self) -> None:
        self._count()

    def _count(self) -> None:
        self.clicks.inc(self.uncounted)
        self.uncounted = 0

    def process_element(self, value: str, ctx: KeyedProcessFunction.Context) -> Iterable[Any]:
        now = time.time()
        out: list[Any] = []  # a list, not a generator: most bundles emit only rejects, and that costs least
        for tagged in unbundle(value):
            self._record(tagged, ctx, now, out)
        if self.touched:  # what the bundle's records added since the last close, as one journal entry
            self.journal.add(self.windows[self.settings.site].entry(self.parts, self.touched))
            self.parts, self.touched = {}, set()
        return out

    def _record(self, tagged: str, ctx: KeyedProcessFunction.Context, now: float, out: list[Any]) -> None:
        """One record of a bundle: its clicks into the windows, its rejects and the windows it closes to
        ``out``; what it added to :attr:`parts` (the bundle's journal entry, written at its end)."""
        s = self.settings
        shard, record = split_record(tagged)
        clicks, rejects, rejected = decode(record, self.clock, now, fmt=s.clicks_format, source=s.source)
        if rejects:
            self.malformed.inc(len(rejects) - rejected)
            self.rejected.inc(rejected)
            out += ((MALFORMED, reject) for reject in rejects)
        if not clicks and not rejects:
            return
        self.uncounted += len(clicks)
        if self.uncounted >= COUNT_EVERY:
            self._count()
        wins = self._windows(s.site, now)  # the key (the job is keyed by the constant site, JobSettings.key)
        dropped, late, opened = wins.count_record(clicks, shard, now, self.parts)
        self.touched.add(shard)
        if late:
            self.late.inc(late)
        if dropped:
            self.dropped.inc(len(dropped))
            why = "beyond the allowed lateness"
            out += ((LATE_DROPPED, json.dumps({"reason": why, "ts_ns": click[0]})) for click in dropped)
        if self.shards is not None:  # a file source: Flink's watermark ends the input (none from Kinesis)
            for start in opened:
                ctx.timer_service().register_event_time_timer(wins.close_time(start) // NS_PER_MS)
        if self.check_at is None:
            self._schedule(wins, ctx, now)
        if wins.watermark >= wins.first_close:
            out += self._close(wins)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        now = time.time()
        wins = self._windows(self.settings.site, now)
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:  # the hold ended, or the slowest shard went idle
            self.check_at = None
            if wins.advance(now):
                self.journal.add((wins.watermark, [], ()))
            self._schedule(wins, ctx, now)
        else:  # Flink's watermark is past it: the input ended
            wins.watermark = max(wins.watermark, timestamp * NS_PER_MS)
        yield from self._close(wins)

    def _schedule(self, wins: OpenWindows, ctx: Any, now: float) -> None:
        """A processing-time timer for when the watermark may move without a record (one at a time)."""
        at = wins.clocks.next_change(now)
        if at is not None:
            self.check_at = at
            ctx.timer_service().register_processing_time_timer(int(at * 1000) + 1)

    def _windows(self, key: str, now: float) -> OpenWindows:
        wins = self.windows.get(key)
        if wins is None:
            wins = self.windows[key] = OpenWindows.for_settings(self.settings, self.shards, now)
            emitted = self.closed.value()
            if emitted is not None:
                wins.restore_emitted(emitted)
            for entry in self.journal.get() or ():
                wins.replay(entry)
            wins.clocks.restart(now)  # the restored shards: active again, idle_timeout from now
        return wins

    def _close(self, wins: OpenWindows) -> Iterator[Any]:
        closed = wins.close(wins.watermark)
        if not closed:
            return
        self._count()
        for window, late in closed:
            self.emitted.inc()
            if late:
                yield WINDOW_STATS, json.dumps({"window_start": window.to_dict()["window_start"], "late_clicks": late})
            yield window.to_json()
        self.parts, self.touched = {}, set()  # what the bundle added so far: in the snapshot
        self.journal.update([wins.snapshot()])
        self.closed.update(wins.emitted())


class Detect(KeyedProcessFunction):
    """The core's :class:`DetectorState` (versioned bytes) in keyed state: windows in, detections out."""

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        # the state's bytes pickled: thread mode's byte-array converter fails on an empty state
        self.state = runtime_context.get_state(ValueStateDescriptor("detector", Types.PICKLED_BYTE_ARRAY()))
        self.rules = self.settings.rules

    def process_element(self, value: str, ctx: KeyedProcessFunction.Context) -> Iterator[str]:
        raw = self.state.value()  # a restored state takes this job's rules, as the detector Lambda's does
        state = DetectorState.from_bytes(raw).take_rules(self.rules) if raw else new_detector(self.settings)
        yield from detect(state, Window.from_json(value))
        self.state.update(state.to_bytes())


def java_class(name: str) -> Any:
    """The Java class ``name`` (a class of flink/pom.xml's jar, which the environment must have loaded)."""
    j_class = get_gateway().jvm
    for part in name.split("."):
        j_class = getattr(j_class, part)
    return j_class


def keyed_records(records: DataStream, settings: JobSettings, split: str | None = None) -> KeyedStream:
    """``records`` in bundles (:data:`RECORD_BUNDLER`, in the JVM, chained to the source), keyed by site
    with Flink's own key selector, so the first Python operator is :class:`Clicks` itself and it is called
    once per bundle; ``split`` names the one split all records come from, tagged onto each by the bundler
    (``None``: they come tagged)."""
    tag = None if split is None else split + SHARD_SEPARATOR
    bundler = java_class(RECORD_BUNDLER)(settings.site, tag, settings.bundle_records, settings.bundle_ms)
    j_rows = records._j_data_stream.transform("bundle records", KEYED_RECORD_TYPE.get_java_type_info(), bundler)
    key_type = Types.ROW([Types.STRING()]).get_java_type_info()
    keyed = j_rows.keyBy(get_gateway().jvm.KeyByKeySelector(), key_type)
    return KeyedStream(keyed, Types.STRING(), DataStream(j_rows))


def build(records: DataStream, settings: JobSettings, split: str | None = None) -> Streams:
    """Wire the pipeline on a stream of clicks-stream records (strings); returns its output streams.

    Each record is tagged with its shard by the source (:func:`~.shards.tag_record`: the Kinesis source's
    ``ShardTaggedSchema``), or, with ``split``, all come from that one split (a file source)."""
    site = settings.site
    shards = None if split is None else (split,)
    clicks = Clicks(settings, shards)
    windows = keyed_records(records, settings, split).process(clicks, output_type=Types.STRING()).name("clicks")
    detections = (
        windows.key_by(lambda _: site, key_type=Types.STRING())
        .process(Detect(settings), output_type=Types.STRING())
        .name("detectors")
    )
    return Streams(
        windows=windows,
        detections=detections,
        malformed=windows.get_side_output(MALFORMED),
        late=windows.get_side_output(LATE_DROPPED),
        window_stats=windows.get_side_output(WINDOW_STATS),
    )
