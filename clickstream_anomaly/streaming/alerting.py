"""The alerter's core: threshold -> incidents -> alert messages, idempotent across retries.

* **Threshold** per detector: ``static`` (``score > THRESHOLD``, the blog's 2.6) or ``sigma`` (online
  mean + ``k`` standard deviations of the detector's earlier scores, Welford's running moments; warm-up
  zeros and scores judged anomalous are left out, the streaming form of the batch rule's sigma
  clipping; no verdict before ``min_history`` scores). A detection that already carries
  ``is_anomaly`` from a detector with its own band (DeepAR) keeps it.
* **Incidents**: anomalous windows of one detector at most ``gap_windows`` missing windows apart form
  one incident, as :func:`clickstream_anomaly.incidents.group_incidents` groups them (it also names the
  cause). An incident's first window sends an ``open`` alert; the first normal window past the gap
  sends a ``resolved`` alert with the whole time range and the cause over all its windows.
* **Idempotency**: per detector the last window judged is kept, so a retried batch (or a detection sent
  twice) is skipped; alerts go to an outbox saved with the state before they are published and are
  removed after, and each has a key (``detector|incident start|event``) remembered once sent, so the
  same alert is never published twice by a retry.
* **Poison detections**: a detection outside the event-time policy
  (:mod:`clickstream_anomaly.streaming.eventtime`; one dated 2100 would make every later one look
  re-sent) or with a score that is not finite (an ``Infinity`` would make the sigma threshold NaN for
  good) is not judged and does not move ``last_window``; it waits in the state's ``rejected`` outbox
  until ``reject`` has sent it to the failure destination.
* **Metrics**: :func:`metric_values` gives the EMF values per detection (score, threshold, is-anomaly and
  the window's features), dimension ``detector``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .. import persist
from ..incidents import group_incidents
from ..records import BASELINE, DEEPAR, FEATURE_COLUMNS, PAGES, Detection, format_timestamp, parse_timestamp
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

COMPONENT = "alerter"

STATE_KIND = "streaming.alerter"
STATE_VERSION = 2  # 1: plain JSON
MAX_INCIDENT_WINDOWS = 288  # two days of 10-minute windows kept per open incident
MAX_SENT_KEYS = 500
MODES = ("static", "sigma")
SELF_JUDGED = (BASELINE, PAGES, DEEPAR)  # detectors whose detections carry their own verdict


@dataclass(frozen=True)
class AlertConfig:
    """``mode`` static|sigma, ``threshold`` (static), ``sigma_k``, ``min_history`` scores before sigma
    judges, ``gap_windows`` and ``freq`` for grouping."""

    mode: str = "static"
    threshold: float = 2.6
    sigma_k: float = 3.0
    min_history: int = 30
    gap_windows: int = 1
    freq: str = DEFAULT_FREQ
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"THRESHOLD_MODE must be static or sigma, got {self.mode!r}")
        if not math.isfinite(self.threshold) or self.sigma_k <= 0 or self.gap_windows < 0:
            raise ValueError("THRESHOLD must be finite, SIGMA_K > 0 and the gap >= 0")

    @property
    def step(self) -> timedelta:
        import pandas as pd

        return pd.Timedelta(self.freq).to_pytimedelta()


@dataclass
class RunningStats:
    """Welford's running mean and variance of a detector's scores."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        if not math.isfinite(x):  # one Infinity would make the mean and the threshold NaN for good
            return
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n > 1 else 0.0


@dataclass
class Alert:
    """One message to publish. ``key`` identifies it for idempotency."""

    key: str
    event: str  # "open" | "resolved"
    subject: str
    text: str
    attributes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "event": self.event,
            "subject": self.subject,
            "text": self.text,
            "attributes": self.attributes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        return cls(data["key"], data["event"], data["subject"], data["text"], data["attributes"])


@dataclass
class AlerterState:
    """Per-detector score statistics, last window judged and open incident; the alert outbox."""

    stats: dict[str, RunningStats] = field(default_factory=dict)
    last_window: dict[str, str] = field(default_factory=dict)
    open_incident: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    sent_keys: list[str] = field(default_factory=list)
    last_wall: dict[str, float | None] = field(default_factory=dict)  # wall clock when last_window was set
    rejected: list[dict[str, Any]] = field(default_factory=list)  # rejections not sent yet
    rejections_overflow: int = 0

    def screen(self, det: Detection, *, now: float | None, policy: EventTimePolicy) -> str | None:
        """Why ``det`` is rejected (a score that is not finite, the event-time policy), or ``None``."""
        if not math.isfinite(det.score):
            return f"score {det.score} is not finite"
        last = self.last_window.get(det.detector)
        clock = None if last is None else parse_timestamp(last).timestamp()
        clock = advanced_clock(clock, self.last_wall.get(det.detector), now)
        return policy.reason(det.window.window_start.timestamp(), clock=clock, now=now)

    def threshold(self, detector: str, config: AlertConfig) -> float:
        if config.mode == "static":
            return config.threshold
        st = self.stats.get(detector)
        if st is None or st.n < config.min_history:
            return math.inf
        return st.mean + config.sigma_k * st.std

    def judge(self, det: Detection, config: AlertConfig) -> Detection:
        """Set ``threshold``/``is_anomaly`` (unless the detector judges itself: the baseline, a forecast band)
        and learn the score."""
        if det.detector not in SELF_JUDGED and (det.p01 is None or det.p99 is None):
            thr = self.threshold(det.detector, config)
            det.threshold = thr if math.isfinite(thr) else 0.0
            det.is_anomaly = bool(math.isfinite(thr) and det.score > thr)
        if det.score > 0 and not det.is_anomaly:
            self.stats.setdefault(det.detector, RunningStats()).add(float(det.score))
        return det

    def apply(
        self,
        detections: Iterable[Detection],
        config: AlertConfig,
        *,
        now: float | None = None,
        policy: EventTimePolicy = DEFAULT_POLICY,
        judged: list[Detection] | None = None,
    ) -> list[Alert]:
        """Judge new detections in time order, group incidents, queue alerts; returns the new alerts.

        Detections :meth:`screen` rejects (``now``: the wall clock) are queued in ``rejected`` instead;
        the ones judged are appended to ``judged`` when given."""
        new: list[Alert] = []
        rejections: list[Rejection] = []
        step = config.step
        for det in sorted(detections, key=lambda d: (d.detector, d.window.window_start)):
            stamp = format_timestamp(det.window.window_start)
            last = self.last_window.get(det.detector)
            if last is not None and stamp <= last:
                continue  # already judged: a retry or a re-sent detection
            reason = self.screen(det, now=now, policy=policy)
            if reason is not None:
                rejections.append(Rejection(COMPONENT, reason, json.loads(det.to_json())))
                continue
            self.last_window[det.detector], self.last_wall[det.detector] = stamp, now
            self.judge(det, config)
            if judged is not None:
                judged.append(det)
            current = [Detection.from_mapping(d) for d in self.open_incident.get(det.detector, [])]
            if current:
                gap = det.window.window_start - current[-1].window.window_start
                limit = step * (config.gap_windows + 1)
                # An anomalous window within the limit joins; a normal one at the limit proves it is over.
                if gap > limit or (not det.is_anomaly and gap >= limit):
                    new.append(self._queue(current, "resolved", config))
                    current = []
                    self.open_incident.pop(det.detector, None)
            if det.is_anomaly:
                if not current:
                    new.append(self._queue([det], "open", config))
                current.append(det)
                self.open_incident[det.detector] = [json.loads(d.to_json()) for d in current[-MAX_INCIDENT_WINDOWS:]]
        self.rejections_overflow += queue_rejections(self.rejected, rejections)
        return new

    def _queue(self, dets: list[Detection], event: str, config: AlertConfig) -> Alert:
        alert = build_alert(dets, event, config)
        if alert.key not in self.sent_keys and all(a["key"] != alert.key for a in self.outbox):
            self.outbox.append(alert.to_dict())
        return alert

    def pending(self) -> list[Alert]:
        return [Alert.from_dict(a) for a in self.outbox if a["key"] not in self.sent_keys]

    def mark_sent(self, keys: Iterable[str]) -> None:
        done = set(keys)
        self.outbox = [a for a in self.outbox if a["key"] not in done]
        self.sent_keys = [*self.sent_keys, *(k for k in done if k not in self.sent_keys)][-MAX_SENT_KEYS:]

    def to_bytes(self) -> bytes:
        """A versioned state (:mod:`clickstream_anomaly.persist`, kind ``streaming.alerter``)."""
        data = {
            "version": 1,
            "stats": {k: [v.n, v.mean, v.m2] for k, v in self.stats.items()},
            "last_window": self.last_window,
            "open_incident": self.open_incident,
            "outbox": self.outbox,
            "sent_keys": self.sent_keys,
            "last_wall": self.last_wall,
            "rejected": self.rejected,
            "rejections_overflow": self.rejections_overflow,
        }
        return persist.dumps_document(STATE_KIND, STATE_VERSION, data)

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> AlerterState:
        """Decode :meth:`to_bytes` (or the version-1 plain JSON); ``None`` gives a fresh state."""
        if raw is None:
            return cls()
        if raw[:1] == b"{":  # version 1: plain JSON
            data = json.loads(raw)
        else:
            _, data = persist.loads_document(raw, STATE_KIND, versions={STATE_VERSION})
        if data.get("version") != 1:
            raise ValueError(f"unknown alerter state version {data.get('version')!r}")
        return cls(
            stats={k: RunningStats(int(n), float(m), float(m2)) for k, (n, m, m2) in data["stats"].items()},
            last_window=dict(data["last_window"]),
            open_incident=dict(data["open_incident"]),
            outbox=list(data["outbox"]),
            sent_keys=list(data["sent_keys"]),
            last_wall=dict(data.get("last_wall", {})),
            rejected=list(data.get("rejected", [])),
            rejections_overflow=int(data.get("rejections_overflow", 0)),
        )


#: An SNS subject: printable ASCII, no line breaks, fewer than 100 characters (else Publish fails).
MAX_SUBJECT = 99


def printable(text: object, limit: int = 200) -> str:
    """``text`` from a record (a detector name, an explanation key) made safe for a message: characters
    that are not printable ASCII escaped (``\\n``, ``\\x00``, ``\\u00e9``), at most ``limit`` characters."""
    out = str(text).encode("ascii", "backslashreplace").decode("ascii")
    out = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in out)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def sns_subject(text: str) -> str:
    """A valid SNS subject: :func:`printable`, at most :data:`MAX_SUBJECT` characters."""
    return printable(text, MAX_SUBJECT)


def _fmt_time(ts: Any) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


def build_alert(dets: list[Detection], event: str, config: AlertConfig) -> Alert:
    """The message for an incident made of ``dets`` (one detector), as it opens or once it is resolved."""
    # One incident by construction: the windows passed in were grouped by the caller.
    incident = group_incidents(
        dets, gap_windows=max(config.gap_windows, len(dets)), freq=config.freq, timezone=config.timezone
    )[0]
    info = incident.to_dict()
    peak = incident.peak
    detector = printable(dets[0].detector, 60)  # both come from the detections stream: escaped
    cause = printable(incident.cause, 300)
    start = _fmt_time(incident.start)
    if event == "open":
        when = f"{start} UTC - ongoing (first anomalous window)"
        headline = f"[clickstream anomaly] {detector}: anomaly since {start} UTC: {cause}"
    else:
        when = (
            f"{start} - {_fmt_time(incident.end)} UTC ({info['duration_minutes']:.0f} min, {info['windows']} window(s))"
        )
        headline = f"[clickstream anomaly resolved] {detector}: {start} UTC, {info['duration_minutes']:.0f} min"
    w = peak.window
    features = ", ".join(f"{c} {getattr(w, c)}" for c in FEATURE_COLUMNS)
    lines = [
        "Clickstream anomaly " + ("OPEN" if event == "open" else "RESOLVED"),
        "",
        f"When: {when}",
        f"Detector: {detector}",
        f"Score: {peak.score:.2f} vs threshold {peak.threshold:.2f} (window {_fmt_time(w.window_start)} UTC)",
        f"Cause: {cause}",
        f"Window features: {features}",
    ]
    if peak.p01 is not None and peak.p99 is not None:
        lines.append(f"Expected clicks: {peak.p01:.0f} - {peak.p99:.0f} (median {peak.p50 or 0:.0f})")
    lines += [
        "",
        "Check: users LOW with clicks going on points to a tracking bug (user ids); everything at "
        "0 to an outage; residual HIGH with users flat to a bot.",
    ]
    key = f"{dets[0].detector}|{format_timestamp(incident.start)}|{event}"
    attributes = {"event": event, "key": key, **info}
    return Alert(key=key, event=event, subject=sns_subject(headline), text="\n".join(lines), attributes=attributes)


def metric_values(det: Detection) -> list[tuple[str, float, str]]:
    """``(name, value, unit)`` of the EMF metrics for one judged detection (dimension: detector)."""
    out = [
        ("AnomalyScore", float(det.score), "None"),
        ("AnomalyThreshold", float(det.threshold), "None"),
        ("IsAnomaly", 1.0 if det.is_anomaly else 0.0, "Count"),
    ]
    out += [(f"Window{c.capitalize()}", float(getattr(det.window, c)), "Count") for c in FEATURE_COLUMNS]
    return out


def sns_attributes(alert: Alert) -> dict[str, dict[str, str]]:
    """SNS MessageAttributes: the event, the detector and the incident as a JSON payload."""
    return {
        "event": {"DataType": "String", "StringValue": alert.event},
        "detector": {"DataType": "String", "StringValue": str(alert.attributes.get("peak_detector", ""))},
        "incident": {"DataType": "String", "StringValue": json.dumps(alert.attributes, sort_keys=True)},
    }


def run_alerter(
    store: Store,
    detections: Iterable[Detection],
    config: AlertConfig,
    *,
    publish: Callable[[Alert], None],
    now: float | None = None,
    policy: EventTimePolicy = DEFAULT_POLICY,
    reject: Callable[[list[Rejection]], None] | None = None,
) -> tuple[list[Detection], list[Alert]]:
    """One alerter invocation: judge and group the detections, save, publish pending alerts, mark them sent.

    Returns the detections judged in this call (for metrics) and the alerts published. An alert whose
    ``publish`` raises stays pending (saved) and is published by the next invocation. ``reject`` sends the
    rejected detections (:meth:`AlerterState.screen`; ``now``: the wall clock) to the failure destination
    the same way (``None``: they stay in the state).
    """
    detections = list(detections)

    def change(state: AlerterState) -> list[Detection]:
        judged: list[Detection] = []
        state.apply(detections, config, now=now, policy=policy, judged=judged)
        return judged

    state, judged = transact(store, AlerterState.from_bytes, AlerterState.to_bytes, change)
    if state.rejected and reject is not None:
        rejected = [Rejection.from_dict(d) for d in state.rejected]
        reject(rejected)
        transact(
            store,
            AlerterState.from_bytes,
            AlerterState.to_bytes,
            lambda st: acknowledge_rejections(st.rejected, rejected),
        )
    published: list[Alert] = []
    try:
        for alert in state.pending():
            publish(alert)
            published.append(alert)
    finally:
        if published:
            keys = [a.key for a in published]
            transact(store, AlerterState.from_bytes, AlerterState.to_bytes, lambda st: st.mark_sent(keys))
    return judged, published
