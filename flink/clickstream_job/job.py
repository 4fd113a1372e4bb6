"""The PyFlink pipeline: clicks -> decode -> event-time watermarks -> 10-minute windows -> detectors.

Every operator is a few lines around :mod:`.logic` (itself a few lines around core calls):

* :class:`Decode` decodes each clicks-stream record with the core's one decoder; each bad click goes to the
  ``malformed`` side output with its reason, counted (metric ``MalformedClicks``), and so does a click the
  event-time policy rejects (dated before 2000, ahead of the wall clock or far ahead of the newest one:
  metric ``EventTimeRejected``), before it could move the watermark.
* Watermarks: bounded out-of-orderness (the producer's maximum skew) with an idle timeout, so a split that
  sends nothing stops holding the watermark back.
* :class:`Windows`, keyed by site: exact distinct users and pages per tumbling window, allowed lateness as
  the Lambda engine's, empty windows emitted, the residual; clicks beyond the lateness go to the
  ``late`` side output, counted (``LateClicksDropped``; ``LateClicksCounted`` for those within it).
* :class:`Detect`, keyed by site: the core's streaming detector state in keyed state, one detection per
  window and detector, as the alerter reads them.

:func:`build` wires them between any source and sinks; :mod:`.local` (a file, the mini-cluster) and
:mod:`.msf` (Kinesis, Managed Service for Apache Flink) choose those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyflink.common import Duration, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import DataStream, KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from clickstream_anomaly.records import Window
from clickstream_anomaly.streaming.detection import DetectorState
from clickstream_anomaly.streaming.eventtime import EventClock

from .logic import DROPPED, LATE, NS_PER_MS, JobSettings, OpenWindows, decode, detect, new_detector

CLICK_TYPE = Types.TUPLE([Types.LONG(), Types.STRING(), Types.STRING()])
MALFORMED = OutputTag("malformed", Types.STRING())
LATE_DROPPED = OutputTag("late", Types.STRING())
WINDOW_STATS = OutputTag("window-stats", Types.STRING())


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


class Decode(ProcessFunction):
    """Clicks-stream record (text) -> ``(ts_ns, user, page)`` tuples; bad clicks to :data:`MALFORMED`."""

    def __init__(self, settings: JobSettings) -> None:
        self.fmt, self.source = settings.clicks_format, settings.source

    def open(self, runtime_context: RuntimeContext) -> None:
        group = metrics_group(runtime_context)
        self.clicks = group.counter("Clicks")
        self.malformed = group.counter("MalformedClicks")
        self.rejected = group.counter("EventTimeRejected")
        self.clock = EventClock()  # per subtask; a restart starts it again from the next click

    def process_element(self, value: str, ctx: ProcessFunction.Context) -> Iterator[Any]:
        clicks, rejects, rejected = decode(value, self.clock, time.time(), fmt=self.fmt, source=self.source)
        self.clicks.inc(len(clicks))
        self.malformed.inc(len(rejects) - rejected)
        self.rejected.inc(rejected)
        for reject in rejects:
            yield MALFORMED, reject
        yield from clicks


class ClickTime(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[0]) // NS_PER_MS


class Windows(KeyedProcessFunction):
    """One key's :class:`~.logic.OpenWindows` in keyed state; an event-time timer per window closes it."""

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("open-windows", Types.PICKLED_BYTE_ARRAY()))
        group = metrics_group(runtime_context)
        self.late = group.counter("LateClicksCounted")
        self.dropped = group.counter("LateClicksDropped")
        self.emitted = group.counter("WindowsEmitted")

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        wins = self.state.value() or OpenWindows.for_settings(self.settings)
        start = wins.start_of(value[0])
        is_new = start not in wins.open
        outcome = wins.add(value, ctx.timer_service().current_watermark() * NS_PER_MS)
        if outcome == DROPPED:
            self.dropped.inc()
            yield LATE_DROPPED, json.dumps({"reason": "beyond the allowed lateness", "ts_ns": value[0]})
            return
        if outcome == LATE:
            self.late.inc()
        if is_new:
            ctx.timer_service().register_event_time_timer(wins.close_time(start) // NS_PER_MS)
        self.state.update(wins)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        wins = self.state.value()
        for window, late in wins.close(timestamp * NS_PER_MS):
            self.emitted.inc()
            if late:
                yield WINDOW_STATS, json.dumps({"window_start": window.to_dict()["window_start"], "late_clicks": late})
            yield window.to_json()
        self.state.update(wins)


class Detect(KeyedProcessFunction):
    """The core's :class:`DetectorState` (versioned bytes) in keyed state: windows in, detections out."""

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        descriptor = ValueStateDescriptor("detector", Types.PRIMITIVE_ARRAY(Types.BYTE()))
        self.state = runtime_context.get_state(descriptor)

    def process_element(self, value: str, ctx: KeyedProcessFunction.Context) -> Iterator[str]:
        raw = self.state.value()
        state = DetectorState.from_bytes(bytes(raw)) if raw else new_detector(self.settings)
        yield from detect(state, Window.from_json(value))
        self.state.update(state.to_bytes())


def watermarks(settings: JobSettings) -> WatermarkStrategy:
    """Bounded out-of-orderness with an idle timeout, on the clicks' event time."""
    return (
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(int(settings.out_of_orderness * 1000)))
        .with_idleness(Duration.of_millis(int(settings.idle_timeout * 1000)))
        .with_timestamp_assigner(ClickTime())
    )


def build(records: DataStream, settings: JobSettings) -> Streams:
    """Wire the pipeline on a stream of clicks-stream records (strings); returns its output streams."""
    site = settings.site
    clicks = records.process(Decode(settings), output_type=CLICK_TYPE).name("decode clicks")
    timed = clicks.assign_timestamps_and_watermarks(watermarks(settings)).name("event time")
    windows = (
        timed.key_by(lambda _: site, key_type=Types.STRING())
        .process(Windows(settings), output_type=Types.STRING())
        .name("windows")
    )
    detections = (
        windows.key_by(lambda _: site, key_type=Types.STRING())
        .process(Detect(settings), output_type=Types.STRING())
        .name("detectors")
    )
    return Streams(
        windows=windows,
        detections=detections,
        malformed=clicks.get_side_output(MALFORMED),
        late=windows.get_side_output(LATE_DROPPED),
        window_stats=windows.get_side_output(WINDOW_STATS),
    )
