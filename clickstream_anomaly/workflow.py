"""From windows to what a user acts on: run detectors, evaluate, group incidents, write the outputs.

``detect`` and ``demo`` both call :func:`run_detection` then :func:`write_outputs`, so the two can never
disagree on what they write.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .detectors import Detector
from .evaluate import detections_frame, evaluate, labels_for
from .incidents import Incident, group_incidents
from .records import (
    DEEPAR,
    KDA_SQL,
    RCF_BATCH,
    RCF_CONTEXT,
    RCF_DEVIATION,
    RCF_STREAMING,
    Detection,
    write_detections_csv,
)
from .thresholds import CurveReport, best_f1_threshold, parse_threshold
from .windowspec import WindowSpec

THRESHOLDED = (
    RCF_STREAMING,
    RCF_BATCH,
    KDA_SQL,
    RCF_CONTEXT,
    RCF_DEVIATION,
)  # detectors whose verdict is score >= a threshold rule


@dataclass
class DetectionResult:
    windows: pd.DataFrame
    detections: list[Detection]
    incidents: list[Incident]
    labels: pd.DataFrame | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, CurveReport] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def frame(self) -> pd.DataFrame:
        return detections_frame(self.detections)


def _aligned_labels(windows: pd.DataFrame, labels: pd.DataFrame | None) -> np.ndarray | None:
    if labels is None:
        return None
    lab = labels.set_index("window_start")["is_anomaly"]
    return lab.reindex(pd.to_datetime(windows["window_start"], utc=True)).fillna(0).to_numpy(dtype=int)


def apply_f1_threshold(detections: list[Detection], windows: pd.DataFrame, labels: np.ndarray | None) -> None:
    """Re-threshold, in place, the detections of score-threshold detectors (the RCFs) at the threshold that
    maximises F1 against ``labels`` (0/1 per window of ``windows``); band and baseline verdicts stay."""
    if labels is None:
        return
    position = {ts: i for i, ts in enumerate(pd.to_datetime(windows["window_start"], utc=True))}
    by_detector: dict[str, list[Detection]] = {}
    for det in detections:
        if det.detector in THRESHOLDED:
            by_detector.setdefault(det.detector, []).append(det)
    for dets in by_detector.values():
        scores = np.array([d.score for d in dets])
        y = np.array([labels[position[pd.Timestamp(d.window.window_start)]] for d in dets])
        cut = best_f1_threshold(scores, y)[0]
        for d in dets:
            d.threshold = float(cut)
            d.is_anomaly = bool(d.score > 0 and d.score >= cut)


def run_detection(  # noqa: PLR0913  (options with defaults; the newer ones keyword-only)
    windows: pd.DataFrame,
    detectors: Sequence[Detector],
    labels: pd.DataFrame | None = None,
    gap_windows: int = 1,
    freq: str | None = None,
    on_step: Callable[[str, float], None] | None = None,
    *,
    history: pd.DataFrame | None = None,
    threshold: str | None = None,
    timezone: str = "UTC",
) -> DetectionResult:
    """Run every detector on ``windows``, evaluate against ``labels`` (optional), group incidents.

    Each detector is fitted on ``history`` first when it is given (else it makes its own default history,
    see :class:`~clickstream_anomaly.detectors.base.Detector`); labels never reach a detector: with
    ``threshold="f1"`` the score-threshold detectors are re-thresholded on the labels afterwards (an
    in-sample figure for choosing a threshold). ``freq`` defaults to the windows' own spec; ``timezone``
    is the site's, for the local times in the causes.
    """
    if windows.empty:
        raise ValueError("no windows to run detection on")
    spec = WindowSpec.parse(freq) if freq is not None else WindowSpec.of(windows)
    if labels is not None:
        labels = labels_for(windows, labels)
    detections: list[Detection] = []
    seconds: dict[str, float] = {}
    for det in detectors:
        t0 = time.perf_counter()
        if history is not None:
            det.fit(history)
        detections.extend(det.detect(windows))
        seconds[det.name] = time.perf_counter() - t0
        if on_step is not None:
            on_step(det.name, seconds[det.name])
    if threshold is not None and parse_threshold(threshold).kind == "f1":
        if labels is None:
            raise ValueError("the f1 threshold needs labels (--labels)")
        apply_f1_threshold(detections, windows, _aligned_labels(windows, labels))
    result = DetectionResult(
        windows=windows,
        detections=detections,
        incidents=group_incidents(detections, gap_windows=gap_windows, freq=spec.freq, timezone=timezone),
        labels=labels,
        seconds=seconds,
    )
    if labels is not None:
        result.metrics = evaluate(detections, labels)
        result.curves = _curves(result.frame, labels)
    return result


def _curves(frame: pd.DataFrame, labels: pd.DataFrame) -> dict[str, CurveReport]:
    out: dict[str, CurveReport] = {}
    lab = labels[["window_start", "is_anomaly"]]
    for name, grp in frame.groupby("detector"):
        if name == DEEPAR:
            continue
        joined = grp.merge(lab, on="window_start", suffixes=("", "_label"))
        y = joined["is_anomaly_label"].to_numpy(dtype=int)
        if 0 < y.sum() < len(y):
            _, best_f1, curve = best_f1_threshold(joined["score"].to_numpy(dtype=float), y)
            out[str(name)] = {**curve, "best_f1": best_f1}
    return out


def write_outputs(result: DetectionResult, out_dir: Path, report: bool = True) -> dict[str, Path]:
    """Write ``detections.csv``, ``incidents.json``, ``metrics.json`` (when labelled) and the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["detections"] = out_dir / "detections.csv"
    with open(paths["detections"], "w", newline="", encoding="utf-8") as fh:
        write_detections_csv(result.detections, fh)
    paths["incidents"] = out_dir / "incidents.json"
    paths["incidents"].write_text(json.dumps([i.to_dict() for i in result.incidents], indent=2) + "\n")
    if result.labels is not None:
        paths["metrics"] = out_dir / "metrics.json"
        payload = {
            "detectors": result.metrics,
            "best_f1": {k: v["best_f1"] for k, v in result.curves.items()},
            "precision_recall_curves": result.curves,
        }
        paths["metrics"].write_text(json.dumps(payload, indent=2) + "\n")
    if report:
        from .reports import write_report

        paths["report"] = write_report(
            out_dir, result.windows, result.frame, result.incidents, result.metrics, result.labels, result.curves
        )
    return paths
