"""What every detector shares: the protocol, detections from scores, and the batch explanation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..features import windows_to_records
from ..records import Detection, explanation_fields
from ..thresholds import DEFAULT_THRESHOLD, ThresholdRule, parse_threshold


class Detector(Protocol):
    """The one detector lifecycle: ``fit`` on history, then ``detect`` new windows (labels never enter).

    A detector that was not fitted first makes its own default history: the streaming ones start empty,
    the batch RCF fits the windows it scores (as a SageMaker batch transform of the training data would),
    DeepAR trains on the first span and forecasts the rest.
    """

    name: str

    def fit(self, history: pd.DataFrame) -> Detector:
        """Learn from ``history`` (windows in time order, WINDOW_COLUMNS); returns the detector."""
        ...

    def detect(self, windows: pd.DataFrame) -> list[Detection]:
        """One detection per window of ``windows`` (in time order)."""
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
    """The threshold rule a detector applies itself: ``f1`` needs labels, which detectors never see, so it
    is applied afterwards by :func:`clickstream_anomaly.workflow.run_detection`; meanwhile the default."""
    rule = spec if isinstance(spec, ThresholdRule) else parse_threshold(spec)
    return parse_threshold(DEFAULT_THRESHOLD) if rule.kind == "f1" else rule


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
