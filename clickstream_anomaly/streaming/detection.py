"""The streaming detector's state and step: windows -> the time-aware baseline, the per-page baseline and
the streaming RCF -> detections.

The models are :class:`clickstream_anomaly.baseline.TimeAwareBaseline` (each window against what is
normal at its local time; its own verdict, warm-up flag for the first day),
:class:`clickstream_anomaly.baseline.pages.PageStream` (the popular pages' clicks, from the
windows' ``page_clicks``; the batch ``baseline-pages`` detector's rules) and
:class:`clickstream_anomaly.kda.KdaRcfStream` (``RANDOM_CUT_FOREST_WITH_EXPLANATION``'s semantics:
score-then-update, score 0 while learning, per-column attribution/direction/strength). Their whole
state, plus the last window processed and an outbox of detections not yet confirmed sent, is one S3
object (a :mod:`clickstream_anomaly.persist` state) written with conditional writes
(:mod:`clickstream_anomaly.streaming.state`):

* a window at or before the last one processed is skipped (re-delivery, or the aggregator re-sending its
  outbox), so retries never feed the forest twice;
* the detections of a batch are saved in the outbox together with the forest, sent, then removed: a
  crash re-sends the same detections (the alerter is idempotent) and never loses one;
* because the forest's RNG is part of the state, a restart in the middle of a stream gives the same
  detections as an uninterrupted run;
* a window outside the event-time policy (:mod:`clickstream_anomaly.streaming.eventtime`: far ahead of
  the last window, moved on by the wall time since, or of the wall clock; before 2000) is not fed to the
  models and does not move ``last_window`` (one window dated 2100 would otherwise make every later one
  look re-delivered); it waits in the state's ``rejected`` outbox until ``reject`` has sent it to the
  failure destination.

The RCF's detections carry raw scores (``threshold`` 0, ``is_anomaly`` false) for the alerter to judge;
the baseline's carry their own verdict (threshold 1 in its score units).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import persist
from ..baseline import TimeAwareBaseline, detections_from_baseline
from ..baseline.pages import PageStream
from ..baseline.rules import DetectorRules
from ..features import records_to_windows
from ..kda import KdaRcfParameters, KdaRcfStream
from ..records import (
    BASELINE,
    FEATURE_COLUMNS,
    KDA_SQL,
    PAGES,
    RCF_STREAMING,
    Detection,
    Window,
    explanation_fields,
    format_timestamp,
    parse_timestamp,
)
from .eventtime import (
    DEFAULT_POLICY,
    EventTimePolicy,
    Rejection,
    acknowledge_rejections,
    advanced_clock,
    queue_rejections,
)
from .state import Store, transact

COMPONENT = "detector"
#: The detectors a streaming engine runs (the detector Lambda's ``DETECTORS``, the Flink job's ``detectors``).
STREAMING_DETECTORS = (BASELINE, PAGES, RCF_STREAMING)
DEFAULT_STREAMING_DETECTORS = (BASELINE, PAGES)  # the CDK app's streaming_detectors, the Lambda's DETECTORS


def streaming_detector_names(names: Iterable[str]) -> list[str]:
    """``names`` stripped of blanks, checked against :data:`STREAMING_DETECTORS` (at least one)."""
    out = [n.strip() for n in names if n.strip()]
    unknown = [n for n in out if n not in STREAMING_DETECTORS]
    if unknown or not out:
        raise ValueError(f"must name one or more of {', '.join(STREAMING_DETECTORS)}, got {out}")
    return out


DETECTOR_NAME = RCF_STREAMING
STATE_KIND = "streaming.detector"
STATE_VERSION = 2
_MAGIC = b"DETSTATE1\n"  # version 1: the streaming RCF alone


def detection_from_kda(
    window: Window, score: float, explanation: str | dict[str, Any], detector: str = DETECTOR_NAME
) -> Detection:
    """A :class:`Detection` from KDA's ``ANOMALY_SCORE`` and ``ANOMALY_EXPLANATION`` (JSON text or dict)."""
    attribution, direction, strength = explanation_fields(explanation)
    return Detection(
        window=window,
        detector=detector,
        score=float(score),
        threshold=0.0,
        is_anomaly=False,
        attribution=attribution,
        direction=direction,
        strength=strength,
    )


@dataclass
class DetectorState:
    """The detectors' models, the last window fed to them (ISO text) and the outbox of unsent detections.

    ``model`` is the KDA-faithful streaming RCF (``None``: off), ``baseline`` the time-aware baseline
    (``None``: off), ``pages`` the per-page baseline (``None``: off); each new window goes through each,
    in time order.
    """

    model: KdaRcfStream | None
    last_window: str | None = None
    outbox: list[str] = field(default_factory=list)
    baseline: TimeAwareBaseline | None = None
    last_wall: float | None = None  # the wall clock when last_window was set (event-time policy)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # rejections not sent yet
    rejections_overflow: int = 0
    pages: PageStream | None = None

    def clock(self, now: float | None) -> float | None:
        """The event clock (s): the last window's start, moved on by the wall time since."""
        if self.last_window is None:
            return None
        return advanced_clock(parse_timestamp(self.last_window).timestamp(), self.last_wall, now)

    def step(
        self,
        windows: Iterable[Window],
        detector: str = DETECTOR_NAME,
        *,
        now: float | None = None,
        policy: EventTimePolicy = DEFAULT_POLICY,
    ) -> list[Detection]:
        """Score-then-update each new window in time order; returns their detections (also outboxed).

        Windows outside ``policy`` (``now`` is the wall clock) are queued in ``rejected`` instead."""
        fresh = []
        rejections = []
        for w in sorted(windows, key=lambda x: x.window_start):
            stamp = format_timestamp(w.window_start)
            if self.last_window is not None and stamp <= self.last_window:  # fixed-width UTC text
                continue
            reason = policy.reason(w.window_start.timestamp(), clock=self.clock(now), now=now)
            if reason is not None:
                rejections.append(Rejection(COMPONENT, reason, w.to_dict()))
                continue
            fresh.append(w)
            self.last_window, self.last_wall = stamp, now
        self.rejections_overflow += queue_rejections(self.rejected, rejections)
        out: list[Detection] = []
        if fresh and self.baseline is not None:
            frame = records_to_windows(fresh)
            out += detections_from_baseline(frame, self.baseline.process(frame))
        if self.pages is not None:
            out += [self.pages.step(w) for w in fresh]
        if self.model is not None:
            for w in fresh:
                score, expl = self.model.process_row([float(v) for v in w.features])
                out.append(detection_from_kda(w, score, expl, detector))
        out.sort(key=lambda d: d.window.window_start)
        self.outbox.extend(d.to_json() for d in out)
        return out

    def take_rules(self, rules: DetectorRules) -> DetectorState:
        """Give the baseline and the per-page detector ``rules`` (every rule: the defaults where ``rules``
        gives none), keeping what they learned; a saved state takes its deployment's rules each time it is
        loaded. Returns ``self``."""
        if self.baseline is not None:
            self.baseline.with_rule(**rules.baseline_params())
        if self.pages is not None:
            self.pages.with_rules(**rules.page_params())
        return self

    def acknowledge(self, sent: Iterable[str]) -> None:
        done = set(sent)
        self.outbox = [d for d in self.outbox if d not in done]

    def to_bytes(self) -> bytes:
        """A versioned state (:mod:`clickstream_anomaly.persist`, kind ``streaming.detector``)."""
        arrays = {}
        if self.model is not None:
            arrays["rcf"] = np.frombuffer(self.model.to_bytes(), dtype=np.uint8)
        if self.baseline is not None:
            arrays["baseline"] = np.frombuffer(self.baseline.to_bytes(), dtype=np.uint8)
        if self.pages is not None:
            arrays["pages"] = np.frombuffer(self.pages.to_bytes(), dtype=np.uint8)
        meta = {
            "last_window": self.last_window,
            "outbox": self.outbox,
            "last_wall": self.last_wall,
            "rejected": self.rejected,
            "rejections_overflow": self.rejections_overflow,
        }
        return persist.dumps(STATE_KIND, STATE_VERSION, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> DetectorState:
        """Decode :meth:`to_bytes`; a version-1 state (the RCF alone, before the baseline) loads as is."""
        if data.startswith(_MAGIC):
            off = len(_MAGIC)
            (n,) = struct.unpack("<I", data[off : off + 4])
            header = json.loads(data[off + 4 : off + 4 + n])
            return cls(KdaRcfStream.from_bytes(data[off + 4 + n :]), header["last_window"], list(header["outbox"]))
        st = persist.loads(data, STATE_KIND, versions={STATE_VERSION})
        model = KdaRcfStream.from_bytes(st.arrays["rcf"].tobytes()) if "rcf" in st.arrays else None
        baseline = TimeAwareBaseline.from_bytes(st.arrays["baseline"].tobytes()) if "baseline" in st.arrays else None
        pages = PageStream.from_bytes(st.arrays["pages"].tobytes()) if "pages" in st.arrays else None
        meta = st.meta
        return cls(
            model,
            meta["last_window"],
            list(meta["outbox"]),
            baseline,
            last_wall=meta.get("last_wall"),
            rejected=list(meta.get("rejected", [])),
            rejections_overflow=int(meta.get("rejections_overflow", 0)),
            pages=pages,
        )


def new_state(
    params: KdaRcfParameters | None,
    random_state: int | None = 0,
    baseline: TimeAwareBaseline | None = None,
    pages: PageStream | None = None,
) -> DetectorState:
    """A fresh state: the streaming RCF with ``params`` (``None``: no RCF), the unfitted ``baseline``
    estimator (``None``: no baseline), which starts learning from nothing, and the per-page ``pages``
    state (``None``: none)."""
    model = KdaRcfStream(FEATURE_COLUMNS, params, random_state=random_state) if params is not None else None
    return DetectorState(model, baseline=baseline.fit(None) if baseline is not None else None, pages=pages)


def run_detector(  # noqa: PLR0913  (the settings are keyword-only)
    store: Store,
    windows: Iterable[Window],
    *,
    params: KdaRcfParameters | None,
    send: Callable[[list[Detection]], None],
    random_state: int | None = 0,
    detector: str = DETECTOR_NAME,
    baseline: TimeAwareBaseline | None = None,
    pages: PageStream | None = None,
    now: float | None = None,
    policy: EventTimePolicy = DEFAULT_POLICY,
    reject: Callable[[list[Rejection]], None] | None = None,
    rules: DetectorRules | None = None,
) -> list[Detection]:
    """One detector invocation: step the saved models over ``windows``, save, send, clear the outbox.

    ``params`` configures the streaming RCF (``None``: off); ``baseline`` the time-aware baseline and
    ``pages`` the per-page state for a new state (``None``: off). ``reject(rejections)`` sends the
    windows ``policy`` rejected (``now``: the wall clock) to the failure destination, after the state is
    saved; they are cleared once it returns (``None``: they stay in the state). Returns the detections
    sent (this batch's plus any left in the outbox by an earlier failure). ``rules``: the verdict rules a
    saved state takes when it is loaded (``None``: it keeps its own; a new state has them from ``baseline``
    and ``pages``).
    """
    windows = list(windows)

    def decode(raw: bytes | None) -> DetectorState:
        if raw is None:
            return new_state(params, random_state, baseline, pages)
        state = DetectorState.from_bytes(raw)
        return state if rules is None else state.take_rules(rules)

    state, _ = transact(
        store, decode, DetectorState.to_bytes, lambda st: st.step(windows, detector, now=now, policy=policy)
    )
    if state.rejected and reject is not None:
        rejected = [Rejection.from_dict(d) for d in state.rejected]
        reject(rejected)
        transact(store, decode, DetectorState.to_bytes, lambda st: acknowledge_rejections(st.rejected, rejected))
    if not state.outbox:
        return []
    pending = list(state.outbox)
    dets = [Detection.from_mapping(json.loads(d)) for d in pending]
    send(dets)
    transact(store, decode, DetectorState.to_bytes, lambda st: st.acknowledge(pending))
    return dets


KDA_DETECTOR_NAME = KDA_SQL


def detection_from_kda_row(row: dict[str, Any]) -> Detection:
    """A row of the KDA SQL application's output (column names in any case: ``window_start``, the
    feature columns, ``ANOMALY_SCORE``, ``ANOMALY_EXPLANATION``) -> :class:`Detection` (``kda-sql``)."""
    from ..kda import EXPLANATION_COLUMN, SCORE_COLUMN

    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    lower = {str(k).lower(): v for k, v in row.items()}
    window = Window.from_mapping(lower)
    score = lower.get(SCORE_COLUMN.lower())
    if score is None:
        raise ValueError(f"row has no {SCORE_COLUMN}")
    return detection_from_kda(window, float(score), lower.get(EXPLANATION_COLUMN.lower()) or {}, KDA_DETECTOR_NAME)
