"""The streaming detector's state and step: windows -> ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` -> detections.

The model is :class:`clickstream_anomaly.kda.KdaRcfStream` (KDA semantics: score-then-update, score 0
while learning, per-column attribution/direction/strength). Its whole state, plus the last window
processed and an outbox of detections not yet confirmed sent, is one S3 object written with conditional
writes (:mod:`clickstream_anomaly.streaming.state`):

* a window at or before the last one processed is skipped (re-delivery, or the aggregator re-sending its
  outbox), so retries never feed the forest twice;
* the detections of a batch are saved in the outbox together with the forest, sent, then removed: a
  crash re-sends the same detections (the alerter is idempotent) and never loses one;
* because the forest's RNG is part of the state, a restart in the middle of a stream gives the same
  detections as an uninterrupted run.

The detector emits raw scores (``threshold`` 0, ``is_anomaly`` false); the alerter applies the threshold.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..kda import KdaRcfParameters, KdaRcfStream
from ..records import (
    FEATURE_COLUMNS,
    KDA_SQL,
    RCF_STREAMING,
    Detection,
    Window,
    explanation_fields,
    format_timestamp,
)
from .state import Store, transact

DETECTOR_NAME = RCF_STREAMING
_MAGIC = b"DETSTATE1\n"


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
    """The forest, the last window fed to it (ISO text) and the outbox of unsent detections (JSON)."""

    model: KdaRcfStream
    last_window: str | None = None
    outbox: list[str] = field(default_factory=list)

    def step(self, windows: Iterable[Window], detector: str = DETECTOR_NAME) -> list[Detection]:
        """Score-then-update each new window in time order; returns their detections (also outboxed)."""
        out: list[Detection] = []
        for w in sorted(windows, key=lambda x: x.window_start):
            stamp = format_timestamp(w.window_start)
            if self.last_window is not None and stamp <= self.last_window:  # fixed-width UTC text
                continue
            score, expl = self.model.process_row([float(v) for v in w.features])
            det = detection_from_kda(w, score, expl, detector)
            out.append(det)
            self.outbox.append(det.to_json())
            self.last_window = stamp
        return out

    def acknowledge(self, sent: Iterable[str]) -> None:
        done = set(sent)
        self.outbox = [d for d in self.outbox if d not in done]

    def to_bytes(self) -> bytes:
        header = json.dumps({"last_window": self.last_window, "outbox": self.outbox}).encode("utf-8")
        return _MAGIC + struct.pack("<I", len(header)) + header + self.model.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> DetectorState:
        if not data.startswith(_MAGIC):
            raise ValueError("not a saved detector state")
        off = len(_MAGIC)
        (n,) = struct.unpack("<I", data[off : off + 4])
        header = json.loads(data[off + 4 : off + 4 + n])
        return cls(KdaRcfStream.from_bytes(data[off + 4 + n :]), header["last_window"], list(header["outbox"]))


def new_state(params: KdaRcfParameters, random_state: int | None = 0) -> DetectorState:
    return DetectorState(KdaRcfStream(FEATURE_COLUMNS, params, random_state=random_state))


def run_detector(
    store: Store,
    windows: Iterable[Window],
    *,
    params: KdaRcfParameters,
    send: Callable[[list[Detection]], None],
    random_state: int | None = 0,
    detector: str = DETECTOR_NAME,
) -> list[Detection]:
    """One detector invocation: step the saved forest over ``windows``, save, send, clear the outbox.

    Returns the detections sent (this batch's plus any left in the outbox by an earlier failure).
    """
    windows = list(windows)

    def decode(raw: bytes | None) -> DetectorState:
        return new_state(params, random_state) if raw is None else DetectorState.from_bytes(raw)

    state, _ = transact(store, decode, DetectorState.to_bytes, lambda st: st.step(windows, detector))
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
