"""Group anomalous windows into incidents, explain them in words and rank them.

Anomalous detections of all detectors are merged by time: windows no more than ``gap_windows`` empty
windows apart belong to one incident. An incident records its time range, the detectors that agree, the
peak score and a cause in words:

* from RCF attribution: the columns carrying most of the summed attribution, with their direction
  (``"users LOW, residual HIGH"``);
* from the forecast band: the observed value against the band (``"clicks LOW: 0, expected 95–160"``).

* from the time-aware baseline: the column with the most attribution against its expected band at the
  local time of the peak, and the other columns that moved (``"clicks LOW: 40, expected 280–350
  (Tue 14:00); users LOW"``), with ``since HH:MM`` for an incident of three windows or more.

Severity = peak excess (score / threshold for scores with a threshold, 1 + score for band distances)
× the square root of the number of anomalous windows (at most 4 counted) × the number of independent
detector families that agree. An incident is *confirmed* when at least two **independent** families agree
(:data:`FAMILIES`: two RCFs on the same four features are one family); confirmed incidents come first,
each group most severe first. Other incidents are kept and reported (nothing is hidden).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .baseline.calendar import slot_label
from .records import (
    BASELINE,
    DEEPAR,
    KDA_SQL,
    PAGES,
    RCF_BATCH,
    RCF_CONTEXT,
    RCF_DEVIATION,
    RCF_STREAMING,
    Detection,
    format_timestamp,
)
from .windowspec import DEFAULT_FREQ

CONFIRM_DETECTORS = 2  # independent families needed for "confirmed"
#: Detector -> family of evidence: detectors of one family look at the same thing the same way.
FAMILIES: dict[str, str] = {
    BASELINE: "baseline",
    PAGES: "baseline",  # the same clicks, counted per page: not independent of the site's baseline
    RCF_CONTEXT: "rcf",
    RCF_DEVIATION: "baseline",  # a forest on the baseline's own deviations: not independent of it
    RCF_STREAMING: "rcf",
    RCF_BATCH: "rcf",
    KDA_SQL: "rcf",
    DEEPAR: "forecast",
}
MAX_DURATION_WINDOWS = 16
PRIORITY = {"clicks": 0, "users": 1, "urls": 2, "residual": 3}  # the order causes name columns in
PRIORITY_SHARE = 0.5  # a column within half of the top attribution counts as a main one
CAUSE_SHARE = 0.25  # a column is named in the cause when it carries >= 25 % of the attribution
MAX_CAUSE_COLUMNS = 2


def excess(det: Detection) -> float:
    """How far a detection is past its threshold, comparable across detectors (1.0 = at the threshold)."""
    if det.threshold > 0:
        return float(det.score) / float(det.threshold)
    return 1.0 + float(det.score)


def attribution_cause(dets: Iterable[Detection]) -> str:
    """Cause in words from summed attribution: top columns (share >= 25 %, at most 2) with direction."""
    total: dict[str, float] = {}
    signed: dict[str, float] = {}
    for d in dets:
        if not d.attribution:
            continue
        for col, value in d.attribution.items():
            total[col] = total.get(col, 0.0) + float(value)
            sign = 1.0 if (d.direction or {}).get(col, "HIGH") == "HIGH" else -1.0
            signed[col] = signed.get(col, 0.0) + sign * float(value)
    grand = sum(total.values())
    if grand <= 0:
        return ""
    ranked = sorted(total.items(), key=lambda kv: -kv[1])
    chosen = [c for c, v in ranked if v / grand >= CAUSE_SHARE][:MAX_CAUSE_COLUMNS] or [ranked[0][0]]
    return ", ".join(f"{c} {'HIGH' if signed[c] >= 0 else 'LOW'}" for c in chosen)


def band_cause(dets: Iterable[Detection], column: str = "clicks") -> str:
    """Cause in words from the forecast band of the most anomalous detection."""
    with_band = [d for d in dets if d.p01 is not None and d.p99 is not None]
    if not with_band:
        return ""
    d = max(with_band, key=lambda x: x.score)
    observed = getattr(d.window, column)
    side = "LOW" if observed < d.p01 else "HIGH" if observed > d.p99 else "in band"
    return f"{column} {side}: {observed:g}, expected {d.p01:.0f}–{d.p99:.0f}"


def _outside_band(det: Detection, column: str, side: str | None) -> bool:
    """Is ``column`` of ``det``'s window beyond its band on ``side`` (``LOW``/``HIGH``)?"""
    low, high = (det.low or {}).get(column), (det.high or {}).get(column)
    value = getattr(det.window, column, None)
    if value is None or low is None or high is None:
        return False
    return (side == "LOW" and value < low) or (side == "HIGH" and value > high)


def _band(peak: Detection, key: str, timezone: str) -> str:
    """``, expected LOW–HIGH (Tue 14:00)``: ``key``'s band at the peak window (when it has one), and when."""
    low, high = (peak.low or {}).get(key), (peak.high or {}).get(key)
    band = f", expected {low:.0f}–{high:.0f}" if low is not None and high is not None else ""
    return f"{band} ({slot_label(int(peak.window.window_start.timestamp() * 1e9), timezone)})"


def _since(dets: list[Detection], timezone: str) -> str:
    """``; since HH:MM`` (local) for an incident of three windows or more, else nothing."""
    if len({d.window.window_start for d in dets}) < 3:
        return ""
    first = min(d.window.window_start for d in dets)
    return f"; since {slot_label(int(first.timestamp() * 1e9), timezone)[4:]}"


def baseline_cause(dets: Iterable[Detection], timezone: str = "UTC") -> str:
    """Cause in words from baseline detections: the main column against its band at the peak, the others."""
    dets = [d for d in dets if d.attribution and d.expected]
    if not dets:
        return ""
    total: dict[str, float] = {}
    for d in dets:
        for col, value in (d.attribution or {}).items():
            total[col] = total.get(col, 0.0) + float(value)
    top = max(total.values())
    # the columns that carry the incident, clicks first among them (what a person reads first), then by share
    ranked = sorted(total, key=lambda c: (total[c] < top * PRIORITY_SHARE, PRIORITY.get(c, len(PRIORITY)), -total[c]))
    grand = sum(total.values()) or 1.0
    main = ranked[0]
    peak = max(dets, key=lambda d: (d.strength or {}).get(main, 0.0))
    if main != "clicks" and "clicks" in ranked and _outside_band(peak, "clicks", (peak.direction or {}).get(main)):
        ranked.remove("clicks")
        ranked.insert(0, "clicks")  # "0 users" in an outage is "0 clicks" too: name what a person reads first
        main = "clicks"
    observed = getattr(peak.window, main)
    side = (peak.direction or {}).get(main, "HIGH")
    text = f"{main} {side}: {observed:g}{_band(peak, main, timezone)}"
    others = [c for c in ranked[1 : MAX_CAUSE_COLUMNS + 1] if total[c] / grand >= CAUSE_SHARE]
    if others:
        text += "; " + ", ".join(f"{c} {(peak.direction or {}).get(c, 'HIGH')}" for c in others)
    return text + _since(dets, timezone)


def page_cause(dets: Iterable[Detection], timezone: str = "UTC") -> str:
    """Cause in words from per-page detections: the page at the peak, its clicks against its band, the
    other pages of the incident, since when."""
    dets = [d for d in dets if d.is_anomaly and d.extra.get("page") is not None and d.attribution]
    if not dets:
        return ""
    peak = max(dets, key=excess)
    key = next(iter(peak.attribution or {}))
    side = (peak.direction or {}).get(key, "LOW")
    text = f"clicks {side} on page {peak.extra['page']}: {peak.extra['page_clicks']:g}{_band(peak, key, timezone)}"
    others = sorted({d.extra["page"] for d in dets} - {peak.extra["page"]})
    if others:
        text += "; also " + ", ".join(others[:MAX_CAUSE_COLUMNS])
    return text + _since(dets, timezone)


@dataclass
class Incident:
    """Consecutive anomalous windows. ``end`` is exclusive (last window start + window length);
    ``timezone`` is the site's, for the local times of the cause."""

    start: datetime
    end: datetime
    detections: list[Detection] = field(repr=False)
    timezone: str = "UTC"

    @property
    def detectors(self) -> list[str]:
        return sorted({d.detector for d in self.detections})

    @property
    def windows(self) -> int:
        return len({d.window.window_start for d in self.detections})

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def peak(self) -> Detection:
        return max(self.detections, key=excess)

    @property
    def families(self) -> list[str]:
        """The independent families of evidence (:data:`FAMILIES`) among the detectors that agree."""
        return sorted({FAMILIES.get(d, d) for d in self.detectors})

    @property
    def severity(self) -> float:
        duration = min(self.windows, MAX_DURATION_WINDOWS) ** 0.5
        return excess(self.peak) * duration * len(self.families)

    @property
    def confirmed(self) -> bool:
        """At least :data:`CONFIRM_DETECTORS` independent families agree."""
        return len(self.families) >= CONFIRM_DETECTORS

    @property
    def cause(self) -> str:
        parts = []
        for name in sorted(self.detectors, key=lambda n: (n != BASELINE, n)):
            dets = [d for d in self.detections if d.detector == name]
            text = baseline_cause(dets, self.timezone) if name == BASELINE else ""
            text = page_cause(dets, self.timezone) if name == PAGES else text
            text = text or attribution_cause(dets) or band_cause(dets)
            if text:
                parts.append(f"{text} ({name})")
        return "; ".join(parts) or "no explanation available"

    def to_dict(self) -> dict[str, Any]:
        peak = self.peak
        return {
            "start": format_timestamp(self.start),
            "end": format_timestamp(self.end),
            "duration_minutes": self.duration.total_seconds() / 60.0,
            "windows": self.windows,
            "detectors": self.detectors,
            "peak_score": float(peak.score),
            "peak_detector": peak.detector,
            "peak_threshold": float(peak.threshold),
            "severity": round(self.severity, 4),
            "confirmed": self.confirmed,
            "families": self.families,
            "cause": self.cause,
        }


def group_incidents(
    detections: Iterable[Detection], gap_windows: int = 1, freq: str = DEFAULT_FREQ, timezone: str = "UTC"
) -> list[Incident]:
    """Group anomalous detections into incidents (most severe first).

    Windows at most ``gap_windows`` missing windows apart join the same incident (``gap_windows=0``:
    only directly consecutive windows).
    """
    if gap_windows < 0:
        raise ValueError("gap_windows must be >= 0")
    step = pd.Timedelta(freq).to_pytimedelta()
    anomalous = sorted((d for d in detections if d.is_anomaly), key=lambda d: d.window.window_start)
    incidents: list[Incident] = []
    current: list[Detection] = []
    last_start: datetime | None = None
    for det in anomalous:
        ws = det.window.window_start
        if last_start is not None and ws - last_start > step * (gap_windows + 1):
            incidents.append(_close(current, step, timezone))
            current = []
        current.append(det)
        last_start = ws if last_start is None else max(last_start, ws)
    if current:
        incidents.append(_close(current, step, timezone))
    incidents.sort(key=lambda inc: (not inc.confirmed, -inc.severity, inc.start))
    return incidents


def _close(dets: list[Detection], step: timedelta, timezone: str) -> Incident:
    start = min(d.window.window_start for d in dets)
    end = max(d.window.window_start for d in dets) + step
    return Incident(start=start, end=end, detections=list(dets), timezone=timezone)


def incident_table(incidents: list[Incident]) -> str:
    """A plain-text table of incidents for terminals and logs."""
    if not incidents:
        return "no incidents"
    rows = [("#", "start (UTC)", "end", "min", "confirmed", "detectors", "peak", "cause")]
    for i, inc in enumerate(incidents, 1):
        rows.append(
            (
                str(i),
                f"{inc.start:%Y-%m-%d %H:%M}",
                f"{inc.end:%H:%M}",
                f"{inc.duration.total_seconds() / 60:.0f}",
                "yes" if inc.confirmed else "no",
                ",".join(inc.detectors),
                f"{inc.peak.score:.2f}",
                inc.cause,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    return "\n".join(lines)
