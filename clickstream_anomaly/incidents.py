"""Group anomalous windows into incidents, explain them in words and rank them.

Anomalous detections of all detectors are merged by time: windows no more than ``gap_windows`` empty
windows apart belong to one incident. An incident records its time range, the detectors that agree, the
peak score and a cause in words:

* from RCF attribution: the columns carrying most of the summed attribution, with their direction
  (``"users LOW, residual HIGH"``);
* from the forecast band: the observed value against the band (``"clicks LOW: 0, expected 95–160"``).

Severity = peak excess (score / threshold for scores with a threshold, 1 + score for band distances)
× number of detectors that agree. An incident is *confirmed* when at least two independent detectors
agree on it; confirmed incidents come first, each group most severe first. Single-detector incidents are
kept and reported (nothing is hidden) but are the ones to read with care.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .records import Detection, format_timestamp

CONFIRM_DETECTORS = 2
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


@dataclass
class Incident:
    """Consecutive anomalous windows. ``end`` is exclusive (last window start + window length)."""

    start: datetime
    end: datetime
    detections: list[Detection] = field(repr=False)

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
    def severity(self) -> float:
        return excess(self.peak) * len(self.detectors)

    @property
    def confirmed(self) -> bool:
        """At least :data:`CONFIRM_DETECTORS` detectors agree."""
        return len(self.detectors) >= CONFIRM_DETECTORS

    @property
    def cause(self) -> str:
        parts = []
        for name in self.detectors:
            dets = [d for d in self.detections if d.detector == name]
            text = attribution_cause(dets) or band_cause(dets)
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
            "cause": self.cause,
        }


def group_incidents(detections: Iterable[Detection], gap_windows: int = 1, freq: str = "10min") -> list[Incident]:
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
            incidents.append(_close(current, step))
            current = []
        current.append(det)
        last_start = ws if last_start is None else max(last_start, ws)
    if current:
        incidents.append(_close(current, step))
    incidents.sort(key=lambda inc: (not inc.confirmed, -inc.severity, inc.start))
    return incidents


def _close(dets: list[Detection], step: timedelta) -> Incident:
    start = min(d.window.window_start for d in dets)
    end = max(d.window.window_start for d in dets) + step
    return Incident(start=start, end=end, detections=list(dets))


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
