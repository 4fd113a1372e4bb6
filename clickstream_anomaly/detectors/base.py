"""What every detector shares: the protocol, detections from scores, and the batch explanation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..features import windows_to_records
from ..records import Detection, explanation_fields
from ..thresholds import ThresholdRule, parse_threshold


class Detector(Protocol):
    name: str

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        """Detections for ``windows`` (frame in WINDOW_COLUMNS order); ``labels`` only for ``f1``."""
        ...


def detections_from_scores(
    windows: pd.DataFrame, scores: np.ndarray, detector: str, threshold: float, attribution: Sequence[Any] | None = None
) -> list[Detection]:
    """One :class:`Detection` per window: ``is_anomaly = score >= threshold`` (and score > 0).

    ``attribution`` (optional, one entry per window) holds KDA explanation JSON strings or dicts, or
    ``(attribution, direction, strength)`` tuples of per-column dicts.
    """
    scores = np.asarray(scores, dtype="float64")
    if len(scores) != len(windows):
        raise ValueError(f"{len(scores)} scores for {len(windows)} windows")
    out = []
    for i, win in enumerate(windows_to_records(windows)):
        attr = direction = strength = None
        if attribution is not None and attribution[i] is not None:
            entry = attribution[i]
            attr, direction, strength = entry if isinstance(entry, tuple) else explanation_fields(entry)
        score = float(scores[i])
        out.append(
            Detection(
                window=win,
                detector=detector,
                score=score,
                threshold=float(threshold),
                is_anomaly=bool(score > 0 and score >= threshold),
                attribution=attr,
                direction=direction,
                strength=strength,
            )
        )
    return out


def _rule(spec: str | ThresholdRule) -> ThresholdRule:
    return spec if isinstance(spec, ThresholdRule) else parse_threshold(spec)


def deviation_explanation(z: np.ndarray, columns: Sequence[str]) -> tuple[dict, dict, dict]:
    """Per-column share of ``|z|`` with direction by sign: the batch detectors' explanation."""
    mag = np.abs(z)
    total = mag.sum() or 1.0
    cols = list(columns)
    return (
        {c: float(mag[i] / total) for i, c in enumerate(cols)},
        {c: ("HIGH" if z[i] >= 0 else "LOW") for i, c in enumerate(cols)},
        {c: float(mag[i]) for i, c in enumerate(cols)},
    )


def _train_part(windows: pd.DataFrame, until: str | pd.Timestamp | None) -> pd.DataFrame:
    if until is None:
        return windows
    ts = pd.Timestamp(until)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    part = windows[pd.to_datetime(windows["window_start"], utc=True) < ts]
    if part.empty:
        raise ValueError(f"no training windows before {ts}")
    return part
