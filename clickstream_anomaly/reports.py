"""The detection report: PNG figures and one self-contained ``report.html`` (images embedded as base64).

Figures (the reference notebook's, one file each):

* ``scores_<detector>.png``: histogram of the scores with the threshold;
* ``features.png``: the four features over time, anomalous windows marked per detector;
* ``attribution.png``: per-column attribution of the streaming RCF (else the baseline) over time (stacked);
* ``forecast.png``: the expected band [p01, p99] of the time-aware baseline and of DeepAR against the
  observed clicks, anomalous windows marked;
* ``precision_recall.png``: precision/recall curves per score detector (when labels are given).

matplotlib is imported when a report is written (Agg backend, no display needed).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .incidents import Incident
from .records import BASELINE, DEEPAR, FEATURE_COLUMNS, RCF_BATCH, RCF_STREAMING, explanation_fields
from .thresholds import CurveReport
from .windowspec import WindowSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS: dict[str, str] = {
    BASELINE: "tab:green",
    RCF_STREAMING: "tab:red",
    RCF_BATCH: "tab:purple",
    DEEPAR: "tab:orange",
}


def _plt() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg back end (imported on first use: the core does not need it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def plot_scores(dets: pd.DataFrame, name: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    scores = dets["score"].to_numpy(dtype=float)
    scores = scores[scores > 0] if (scores > 0).any() else scores
    ax.hist(scores, bins=60, color="tab:blue", alpha=0.8)
    thr = float(dets["threshold"].iloc[0])
    ax.axvline(thr, color="tab:red", linestyle="--", label=f"threshold {thr:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("windows")
    ax.set_title(f"{name}: score distribution")
    ax.legend()
    return _save(fig, path)


def plot_features(windows: pd.DataFrame, dets: pd.DataFrame, path: Path, labels: pd.DataFrame | None = None) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(len(FEATURE_COLUMNS), 1, figsize=(12, 8), sharex=True)
    ts = pd.to_datetime(windows["window_start"], utc=True)
    for ax, col in zip(axes, FEATURE_COLUMNS, strict=True):
        ax.plot(ts, windows[col], color="tab:blue", linewidth=0.7)
        ax.set_ylabel(col)
        if labels is not None:
            lab = labels[labels["is_anomaly"] == 1]["window_start"]
            step = WindowSpec.of(windows).length
            for t in lab:
                ax.axvspan(t, t + step, color="grey", alpha=0.25, linewidth=0)
        for name, grp in dets[dets["is_anomaly"]].groupby("detector"):
            sel = windows.set_index(ts).reindex(grp["window_start"])
            ax.scatter(grp["window_start"], sel[col], s=14, color=COLORS.get(str(name), "black"), label=name, zorder=3)
    axes[0].legend(loc="upper left", fontsize=8, ncol=3)
    axes[0].set_title("features per window (grey: labelled anomalies; dots: detected)")
    return _save(fig, path)


def plot_attribution(dets: pd.DataFrame, path: Path) -> Path | None:
    """Per-column attribution over time of the streaming RCF (else of the baseline), stacked."""
    for name in (RCF_STREAMING, BASELINE):
        stream = dets[(dets["detector"] == name) & (dets["explanation"] != "")]
        if not stream.empty:
            break
    else:
        return None
    plt = _plt()
    attributions = [explanation_fields(e)[0] or {} for e in stream["explanation"]]
    cols = list(attributions[0])
    values = np.array([[a[c] for c in cols] for a in attributions])
    fig, ax = plt.subplots(figsize=(12, 3.5))
    ax.stackplot(stream["window_start"], values.T, labels=cols, alpha=0.85)
    thr = float(stream["threshold"].iloc[0])
    ax.axhline(thr, color="black", linestyle="--", linewidth=0.8, label=f"threshold {thr:.3g}")
    ax.set_ylabel("attribution (sums to the score)")
    ax.set_title(f"{name}: per-column attribution over time")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    return _save(fig, path)


def plot_forecast(windows: pd.DataFrame, dets: pd.DataFrame, path: Path, column: str = "clicks") -> Path | None:
    """The expected band of each band detector (time-aware baseline, DeepAR) against the observed clicks,
    windows outside it marked; one panel per detector."""
    has_band = pd.to_numeric(dets["p01"], errors="coerce").notna()
    bands = [(n, dets[(dets["detector"] == n) & has_band]) for n in (BASELINE, DEEPAR)]
    bands = [(n, b) for n, b in bands if not b.empty]
    if not bands:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(bands), 1, figsize=(12, 3.5 * len(bands)), squeeze=False)
    ts = pd.to_datetime(windows["window_start"], utc=True)
    for ax, (name, band) in zip(axes[:, 0], bands, strict=True):
        start = band["window_start"].min() - pd.Timedelta("1D")
        keep = ts >= start
        ax.plot(ts[keep], windows.loc[keep, column], color="tab:blue", linewidth=0.8, label=f"observed {column}")
        p01, p50, p99 = (band[c].astype(float) for c in ("p01", "p50", "p99"))
        color = COLORS.get(name, "tab:orange")
        ax.fill_between(band["window_start"], p01, p99, color=color, alpha=0.3, label="expected [p01, p99]")
        ax.plot(band["window_start"], p50, color=color, linewidth=0.9, label="expected median")
        out = band[band["is_anomaly"]]
        ax.scatter(out["window_start"], out[column], color="tab:red", s=20, zorder=3, label="anomalous")
        ax.set_ylabel(column)
        ax.set_title(f"{name}: expected band of {column}")
        ax.legend(loc="upper left", fontsize=8, ncol=4)
    return _save(fig, path)


def plot_precision_recall(curves: dict[str, CurveReport], path: Path) -> Path | None:
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, c in curves.items():
        ax.plot(c["recall"], c["precision"], label=name, color=COLORS.get(name))
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision / recall")
    ax.legend()
    return _save(fig, path)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></figure>'


def _incident_rows(incidents: Sequence[Incident]) -> str:
    rows = []
    for i, inc in enumerate(incidents, 1):
        d = inc.to_dict()
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    i,
                    d["start"],
                    d["end"],
                    f"{d['duration_minutes']:.0f}",
                    ", ".join(d["detectors"]),
                    f"{d['peak_score']:.3g}",
                    f"{d['severity']:.2f}",
                    d["cause"],
                )
            )
            + "</tr>"
        )
    return "\n".join(rows)


def write_report(
    out_dir: Path,
    windows: pd.DataFrame,
    dets: pd.DataFrame,
    incidents: Sequence[Incident],
    metrics: dict[str, Any] | None = None,
    labels: pd.DataFrame | None = None,
    curves: dict[str, CurveReport] | None = None,
    title: str = "Clickstream anomalies",
) -> Path:
    """Write the PNGs and ``report.html`` into ``out_dir``; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    for name, grp in dets.groupby("detector", sort=True):
        if name != DEEPAR:
            figures.append(plot_scores(grp, str(name), out_dir / f"scores_{name}.png"))
    figures.append(plot_features(windows, dets, out_dir / "features.png", labels))
    for fig in (
        plot_attribution(dets, out_dir / "attribution.png"),
        plot_forecast(windows, dets, out_dir / "forecast.png"),
        plot_precision_recall(curves or {}, out_dir / "precision_recall.png"),
    ):
        if fig is not None:
            figures.append(fig)
    metric_html = ""
    if metrics:
        head = "<tr><th>detector</th><th>windows</th><th>precision</th><th>recall</th><th>F1</th><th>ROC AUC</th></tr>"
        body = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{m['windows']}</td><td>{m['precision']:.3f}</td>"
            f"<td>{m['recall']:.3f}</td><td>{m['f1']:.3f}</td>"
            f"<td>{'n/a' if m['roc_auc'] is None else format(m['roc_auc'], '.3f')}</td></tr>"
            for n, m in metrics.items()
        )
        metric_html = f"<h2>Metrics against the labels</h2><table>{head}{body}</table>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
img{{max-width:100%}}figure{{margin:1em 0}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{len(windows)} windows from {pd.Timestamp(windows["window_start"].min()):%Y-%m-%d %H:%M} to
{pd.Timestamp(windows["window_start"].max()):%Y-%m-%d %H:%M} UTC; detectors:
{html.escape(", ".join(sorted(dets["detector"].unique())))}.</p>
<h2>Incidents ({len(incidents)}), most severe first</h2>
<table><tr><th>#</th><th>start (UTC)</th><th>end</th><th>minutes</th><th>detectors</th><th>peak score</th>
<th>severity</th><th>cause</th></tr>
{_incident_rows(incidents)}</table>
{metric_html}
<h2>Figures</h2>
{"".join(_img(p) for p in figures)}
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
