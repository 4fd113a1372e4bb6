"""Evaluation against window labels: precision, recall, F1, ROC AUC, confusion matrix, threshold table.

Uses scikit-learn's metrics (imported when called, so the core imports without it). Detections and labels
are joined on ``window_start``; windows a detector did not score (e.g. DeepAR's training range) are left
out of that detector's metrics, and the count of evaluated windows is reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .records import DEEPAR, Detection
from .windowspec import WindowSpec

PERCENTILES = (90.0, 95.0, 97.0, 98.0, 99.0, 99.5, 99.9)


def detections_frame(detections: Iterable[Detection]) -> pd.DataFrame:
    """Detections -> frame (``window_start`` datetime64 UTC plus the flat detection columns)."""
    rows = [d.to_row() for d in detections]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    return frame


def _joined(dets: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    lab = labels[["window_start", "is_anomaly"]].rename(columns={"is_anomaly": "label"})
    joined = dets.merge(lab, on="window_start", how="inner")
    return joined


def metrics_for(scores: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Metrics of one detector: ``scores``, 0/1 ``predicted`` and 0/1 ``labels``, all shape ``(n,)``."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    labels = np.asarray(labels).astype(int)
    predicted = np.asarray(predicted).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, average="binary", zero_division=0)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    auc = float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None
    return {
        "windows": len(labels),
        "anomalous_windows": int(labels.sum()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": auc,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def threshold_table(
    scores: np.ndarray, labels: np.ndarray, percentiles: Iterable[float] = PERCENTILES
) -> list[dict[str, float]]:
    """Precision/recall/F1 when thresholding at each percentile of the scores (the notebook's table)."""
    from sklearn.metrics import precision_recall_fscore_support

    rows = []
    active = scores[scores > 0] if (scores > 0).any() else scores
    for p in percentiles:
        t = float(np.percentile(active, p))
        pred = (scores >= t) & (scores > 0)
        pr, rc, f1, _ = precision_recall_fscore_support(labels, pred.astype(int), average="binary", zero_division=0)
        rows.append(
            {
                "percentile": p,
                "threshold": t,
                "flagged": int(pred.sum()),
                "precision": float(pr),
                "recall": float(rc),
                "f1": float(f1),
            }
        )
    return rows


def labels_for(windows: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` (``window_start, is_anomaly[, incident]``, any window length) at the starts of ``windows``:
    a window is anomalous when a labelled anomalous time falls inside it (so 10-minute labels judge
    1-hour windows)."""
    spec = WindowSpec.of(windows)
    starts = pd.to_datetime(windows["window_start"], utc=True)
    lab = labels.assign(window_start=pd.to_datetime(labels["window_start"], utc=True))
    bucket = lab["window_start"].dt.floor(spec.length)
    anomalous = lab.groupby(bucket)["is_anomaly"].max()
    out = pd.DataFrame(
        {"window_start": starts.to_numpy(), "is_anomaly": anomalous.reindex(starts).fillna(0).astype(int).to_numpy()}
    )
    if "incident" in lab:
        named = lab[lab["is_anomaly"].astype(int) == 1].groupby(bucket)["incident"].first()
        out["incident"] = named.reindex(starts).fillna("").to_numpy()
    out["window_start"] = pd.to_datetime(out["window_start"], utc=True)
    return out


def evaluate(detections: Iterable[Detection], labels: pd.DataFrame) -> dict[str, Any]:
    """Per-detector metrics and threshold tables (score detectors only) against ``labels``."""
    frame = detections_frame(detections)
    out: dict[str, Any] = {}
    if frame.empty:
        return out
    for name, grp in frame.groupby("detector", sort=True):
        joined = _joined(grp, labels)
        if joined.empty:
            continue
        scores = joined["score"].to_numpy(dtype="float64")
        lab = joined["label"].to_numpy(dtype=int)
        entry = metrics_for(scores, joined["is_anomaly"].to_numpy(dtype=bool), lab)
        entry["threshold"] = float(joined["threshold"].iloc[0])
        if name != DEEPAR and lab.sum() > 0:
            entry["threshold_table"] = threshold_table(scores, lab)
        out[str(name)] = entry
    return out


def percentile_table(metrics: dict[str, Any]) -> str:
    """The notebook's threshold table: per score detector, P/R/F1 when thresholding at each percentile."""
    rows = [("detector", "percentile", "threshold", "flagged", "precision", "recall", "F1")]
    for name, m in metrics.items():
        for r in m.get("threshold_table", []):
            rows.append(
                (
                    name,
                    f"{r['percentile']:g}",
                    f"{r['threshold']:.3f}",
                    str(r["flagged"]),
                    f"{r['precision']:.3f}",
                    f"{r['recall']:.3f}",
                    f"{r['f1']:.3f}",
                )
            )
    if len(rows) == 1:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def metrics_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of the per-detector metrics."""
    if not metrics:
        return "no metrics (no labelled windows)"
    head = ("detector", "windows", "thr", "precision", "recall", "F1", "ROC AUC", "tp", "fp", "fn")
    rows = [head]
    for name, m in metrics.items():
        cm = m["confusion_matrix"]
        auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
        rows.append(
            (
                name,
                str(m["windows"]),
                f"{m['threshold']:.3g}",
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['f1']:.3f}",
                auc,
                str(cm["tp"]),
                str(cm["fp"]),
                str(cm["fn"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
