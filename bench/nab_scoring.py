"""NAB (Numenta Anomaly Benchmark) scoring, written from the summary in ``data/nab/SOURCE.md`` (no NAB code).

A detector gives every row of every file a score in [0, 1]. For one profile (tp / fp / fn weights) and one
threshold shared by the whole corpus, the rows with ``score >= threshold`` are detections, and:

* rows of the probationary period (the first ``min(floor(0.15 n), 750)`` rows of a file) are ignored;
* a window with no detection costs ``-fn``; a window with detections earns ``tp * credit`` of its earliest
  detection, where ``credit = sigmoid(-(right - i + 1) / width) / sigmoid(-1)`` with
  ``sigmoid(x) = 2 / (1 + exp(5 x)) - 1`` (-1 for ``x > 3``): exactly 1 at the window's first row, about 0
  at its last row;
* a detection outside every window costs ``fp`` in full before the file's first window, and
  ``-fp * sigmoid((i - right) / width)`` after a window (``right``/``width`` of the nearest window before
  it): about 0 just after the window, the full ``fp`` from about one window-width past its end;
* normalised score ``100 * (raw - raw_null) / (raw_perfect - raw_null)`` where the null detector detects
  nothing (``raw_null = -fn * windows``) and the perfect one earns ``tp`` per window.

:func:`sweep` tunes the threshold exactly over every distinct score of the corpus (NAB tunes it with a
local search over the same objective) and returns the best total.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Profile:
    """NAB cost profile: weight of a detected window, of a false positive row, of a missed window."""

    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile(1.0, 0.11, 1.0),
    "reward_low_FP": Profile(1.0, 0.22, 1.0),
    "reward_low_FN": Profile(1.0, 0.11, 2.0),
}


def probation_rows(n_rows: int, fraction: float = 0.15) -> int:
    """Rows of the probationary period: ``min(floor(fraction * n), fraction * 5000)`` (750 for 0.15)."""
    return int(min(math.floor(fraction * n_rows), fraction * 5000))


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """``2 / (1 + exp(5 x)) - 1``, and -1 for ``x > 3``: +0.987 at -1, 0 at 0, -0.987 at +1."""
    x = np.asarray(x, dtype=float)
    return np.where(x > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(x, 3.0))) - 1.0)


@dataclass(frozen=True)
class LabelledFile:
    """One NAB file's labels as row indices.

    Attributes
    ----------
    name : ``"<category>/<file>.csv"``.
    n_rows : number of data rows.
    probation : rows ``[0, probation)`` are not scored.
    windows : ``(first_row, last_row)`` inclusive, sorted, non-overlapping.
    """

    name: str
    n_rows: int
    probation: int
    windows: tuple[tuple[int, int], ...]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    def in_window(self) -> np.ndarray:
        """``(n_rows,)`` bool: row lies inside a labelled window."""
        out = np.zeros(self.n_rows, dtype=bool)
        for lo, hi in self.windows:
            out[lo : hi + 1] = True
        return out

    def row_values(self, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
        """Per-row window id (-1 outside every window, -2 in the probationary period) and the value a
        detection on that row is worth (``tp * credit`` in a window, a cost <= 0 outside), both ``(n_rows,)``."""
        wid = np.full(self.n_rows, -1, dtype=np.int64)
        val = np.full(self.n_rows, -profile.fp)  # before the first window: full cost
        top = float(scaled_sigmoid(-1.0))
        bounds = [*self.windows, (self.n_rows, self.n_rows)]
        for k, (lo, hi) in enumerate(self.windows):
            width = hi - lo + 1
            idx = np.arange(lo, hi + 1)
            wid[idx] = k
            val[idx] = profile.tp * scaled_sigmoid(-(hi - idx + 1) / width) / top
            nxt = bounds[k + 1][0]
            after = np.arange(hi + 1, nxt)
            val[after] = profile.fp * scaled_sigmoid((after - hi) / width)
        wid[: self.probation] = -2
        val[: self.probation] = 0.0
        return wid, val


def window_rows(timestamps: pd.Series, windows: list[list[str]]) -> tuple[tuple[int, int], ...]:
    """Row ranges ``(first, last)`` (inclusive) of the rows whose timestamp lies in ``[start, end]``."""
    ts = pd.to_datetime(timestamps).to_numpy()
    out = []
    for start, end in windows:
        inside = np.flatnonzero((ts >= np.datetime64(pd.Timestamp(start))) & (ts <= np.datetime64(pd.Timestamp(end))))
        if len(inside):
            out.append((int(inside[0]), int(inside[-1])))
    return tuple(sorted(out))


def load_series(path: str | Path) -> pd.DataFrame:
    """A NAB CSV as ``timestamp`` (datetime64) and ``value`` (float64) columns, rows in file order.

    Repeated timestamps are kept (NAB scores every row), a missing trailing newline is fine, gaps are not
    filled."""
    df = pd.read_csv(path)
    if list(df.columns) != ["timestamp", "value"]:
        raise ValueError(f"{path}: expected header timestamp,value, got {list(df.columns)}")
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["value"] = df["value"].astype(float)
    return df


def load_corpus(root: str | Path) -> list[tuple[LabelledFile, pd.DataFrame]]:
    """Every file named in ``root/labels/combined_windows.json`` that exists under ``root/data``, sorted."""
    root = Path(root)
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    out = []
    for name in sorted(windows):
        path = root / "data" / name
        if not path.exists():
            continue
        df = load_series(path)
        n = len(df)
        out.append((LabelledFile(name, n, probation_rows(n), window_rows(df["timestamp"], windows[name])), df))
    return out


@dataclass(frozen=True)
class NabResult:
    """Best result of one detector under one profile over a corpus."""

    threshold: float
    raw: float
    score: float  # normalised, null = 0, perfect = 100
    windows: int
    detected_windows: int
    false_positives: int


def _normalise(raw: float, n_windows: int, profile: Profile) -> float:
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0


def _stack(
    files: list[LabelledFile], scores: list[np.ndarray], profile: Profile
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    if len(files) != len(scores):
        raise ValueError("one score array per file")
    all_s, all_w, all_v = [], [], []
    offset = 0
    for f, s in zip(files, scores, strict=True):
        s = np.asarray(s, dtype=float)
        if s.shape != (f.n_rows,):
            raise ValueError(f"{f.name}: expected {f.n_rows} scores, got shape {s.shape}")
        if np.isnan(s).any():
            raise ValueError(f"{f.name}: NaN scores")
        wid, val = f.row_values(profile)
        keep = wid != -2
        w = wid[keep]
        all_s.append(s[keep])
        all_w.append(np.where(w >= 0, w + offset, -1))
        all_v.append(val[keep])
        offset += len(f.windows)
    return np.concatenate(all_s), np.concatenate(all_w), np.concatenate(all_v), offset


def score_at(
    files: list[LabelledFile], scores: list[np.ndarray], threshold: float, profile: Profile = PROFILES["standard"]
) -> NabResult:
    """NAB result when every row with ``score >= threshold`` is a detection (direct computation)."""
    s, w, v, n_windows = _stack(files, scores, profile)
    det = s >= threshold
    raw = float(v[det & (w < 0)].sum())
    fp = int((det & (w < 0)).sum())
    hit = 0
    for k in range(n_windows):
        inside = det & (w == k)
        if inside.any():
            raw += float(v[inside].max())  # the earliest detection has the largest credit
            hit += 1
        else:
            raw -= profile.fn
    return NabResult(threshold, raw, _normalise(raw, n_windows, profile), n_windows, hit, fp)


def sweep(files: list[LabelledFile], scores: list[np.ndarray], profile: Profile = PROFILES["standard"]) -> NabResult:
    """Best NAB result over every threshold: lowers the threshold one distinct score at a time.

    The null choice (threshold above every score, no detections) is included, so the result is >= 0."""
    s, w, v, n_windows = _stack(files, scores, profile)
    order = np.argsort(-s, kind="stable")
    s_l, w_l, v_l = s[order].tolist(), w[order].tolist(), v[order].tolist()
    best_window = [None] * n_windows
    raw = -profile.fn * n_windows
    hit = fp = 0
    best = NabResult(math.inf, raw, _normalise(raw, n_windows, profile), n_windows, 0, 0)
    n = len(s_l)
    for i in range(n):
        k, val = w_l[i], v_l[i]
        if k < 0:
            raw += val
            fp += 1
        else:
            cur = best_window[k]
            if cur is None:
                raw += val + profile.fn
                best_window[k] = val
                hit += 1
            elif val > cur:
                raw += val - cur
                best_window[k] = val
        if (i + 1 == n or s_l[i + 1] != s_l[i]) and raw > best.raw + 1e-12:
            best = NabResult(s_l[i], raw, _normalise(raw, n_windows, profile), n_windows, hit, fp)
    return best
