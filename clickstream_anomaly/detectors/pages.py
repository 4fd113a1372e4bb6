"""The per-page detector (``baseline-pages``): the clicks of each popular page against what is normal for
that page at its local time of day and weekday, so a page that stops getting clicks (a broken home page,
checkout or landing page) is seen even when the site's totals hide it.

A page is *popular* at a window when it had at least ``min_share`` (3 %) of the site's clicks over the
``share_window`` before it (a day by default); the ``max_pages`` most popular pages of the run get a
:class:`~clickstream_anomaly.baseline.TimeAwareBaseline` of their clicks (a count column), learned from
the first window on, and a window is judged only on the pages popular at it. By default only a fall is
reported (``directions=("LOW",)``): a page that gets more clicks than usual is either the site's traffic
(the site-wide baseline sees it) or a page that was not popular (a page storm, which the site's users
and clicks show). Each page adds tests, so the pair threshold is stricter than the site's (3.5 spreads
twice in a row), there is no drift test, and a window where the page is expected to get fewer than
``min_expected`` (5) clicks is not judged (none of 3 expected clicks is not news).

The detector needs the clicks per window and page (:class:`~clickstream_anomaly.features.PageCounts`,
filled when the windows are computed from clicks); on windows read from a windows file it gives no verdict
(every detection a warm-up). The deployed engines do not emit page counts yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..base import BaseEstimator
from ..baseline import TimeAwareBaseline
from ..features import PageCounts, windows_to_records
from ..records import PAGES, Detection
from ..windowspec import WindowSpec

PAGE_KEY = "page:"  # explanation key of a page: "page:/checkout"
NO_PAGE_COUNTS = "no clicks per page (windows read from a windows file): baseline-pages gives no verdict"


@dataclass(kw_only=True, repr=False, eq=False)
class PageBaselineDetector(BaseEstimator):
    """Detections from one time-aware baseline per popular page (see the module docstring).

    ``pages`` holds the clicks per window and page of the windows given to :meth:`fit` and :meth:`detect`
    (a :class:`PageCounts` or its frame). Score in threshold units (1 = threshold), the page as the
    explanation's column (``page:/path``) with its direction, strength, expected clicks and band; the
    observed clicks of the page in ``extra["page_clicks"]``.
    """

    pages: PageCounts | pd.DataFrame | None = None
    timezone: str = "UTC"
    min_share: float = 0.03
    max_pages: int = 10
    share_window: str = "1D"
    point_threshold: float = 5.0
    pair_threshold: float = 3.5
    min_expected: float = 5.0
    directions: Sequence[str] = ("LOW",)
    exclude: Sequence[tuple[Any, Any]] = ()
    options: dict[str, Any] = field(default_factory=dict)
    name: str = PAGES
    note: str = field(default="", init=False)
    history_: pd.DataFrame | None = field(default=None, init=False, repr=False)
    pages_: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.min_share <= 1:
            raise ValueError(f"min_share must be in (0, 1], got {self.min_share}")
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {self.max_pages}")
        bad = [d for d in self.directions if d not in ("LOW", "HIGH")]
        if bad or not self.directions:
            raise ValueError(f"directions must be LOW and/or HIGH, got {list(self.directions)}")

    def fit(self, history: pd.DataFrame) -> PageBaselineDetector:
        """Keep ``history`` (windows; its page counts must be in ``pages``): learned before the windows."""
        self.history_ = history
        return self

    def _counts(self) -> PageCounts | None:
        if self.pages is None:
            return None
        counts = self.pages if isinstance(self.pages, PageCounts) else PageCounts(self.pages)
        return counts if len(counts.frame) else None

    def detect(self, windows: pd.DataFrame) -> list[Detection]:
        """One detection per window (a warm-up where no page is popular yet, or without page counts)."""
        counts = self._counts()
        records = windows_to_records(windows)
        if counts is None:
            self.note = NO_PAGE_COUNTS
            return [Detection(w, self.name, 0.0, 1.0, False, warmup=True) for w in records]
        frame = windows if self.history_ is None else pd.concat([self.history_, windows], ignore_index=True)
        spec = WindowSpec.of(windows)
        starts = pd.to_datetime(frame["window_start"], utc=True)
        popular, names = self._popular(counts, starts, spec)
        self.pages_ = names
        wide = counts.wide(starts, names).to_numpy(dtype="float64")
        n, k = wide.shape
        score, z, exp, low, high = (np.zeros((n, k)) for _ in range(5))
        for j in range(k):
            model = TimeAwareBaseline(
                columns=("clicks",),
                count_columns=("clicks",),
                timezone=self.timezone,
                point_threshold=self.point_threshold,
                pair_threshold=self.pair_threshold,
                drift_threshold=math.inf,
                window=spec.freq,
                **self.options,
            ).fit(None)
            s = model.process(pd.DataFrame({"window_start": starts, "clicks": wide[:, j]}), exclude=self.exclude)
            side = np.where(s.z[:, 0] >= 0, "HIGH", "LOW")
            with np.errstate(invalid="ignore"):
                busy = s.expected[:, 0] >= self.min_expected
            judged = popular[:, j] & s.warm & busy & np.isin(side, list(self.directions))
            score[:, j] = np.where(judged, s.column_score[:, 0], 0.0)
            z[:, j], exp[:, j], low[:, j], high[:, j] = s.z[:, 0], s.expected[:, 0], s.low[:, 0], s.high[:, 0]
        first = n - len(windows)
        out = []
        for i, win in enumerate(records):
            r = first + i
            if not k or not popular[r].any():
                out.append(Detection(win, self.name, 0.0, 1.0, False, warmup=True))
                continue
            j = int(np.argmax(score[r]))
            if score[r, j] <= 0:
                out.append(Detection(win, self.name, 0.0, 1.0, False))
                continue
            key = PAGE_KEY + names[j]
            out.append(
                Detection(
                    window=win,
                    detector=self.name,
                    score=float(score[r, j]),
                    threshold=1.0,
                    is_anomaly=bool(score[r, j] >= 1.0),
                    attribution={key: float(score[r, j])},
                    direction={key: "HIGH" if z[r, j] >= 0 else "LOW"},
                    strength={key: float(abs(z[r, j]))},
                    expected={key: float(exp[r, j])},
                    low={key: float(low[r, j])},
                    high={key: float(high[r, j])},
                    extra={"page": names[j], "page_clicks": float(wide[r, j])},
                )
            )
        return out

    def _candidates(self, counts: PageCounts, starts: pd.Series, span: int) -> list[str]:
        """Pages that can be popular somewhere: at least half of ``min_share`` of the clicks in one block of
        ``span`` windows (a trailing span overlaps two blocks), at most ``4 * max_pages`` of them."""
        frame = counts.frame
        first = pd.to_datetime(starts, utc=True).min()
        block = ((frame["window_start"] - first) // (pd.Timedelta(self.share_window))).astype("int64")
        per_block = frame.groupby([block, frame["page"]])["clicks"].sum()
        share = per_block / per_block.groupby(level=0).transform("sum")
        best = share.groupby(level=1).max()
        best = best[best >= self.min_share / 2].sort_values(ascending=False, kind="stable")
        return [str(p) for p in best.index[: 4 * self.max_pages]]

    def _popular(self, counts: PageCounts, starts: pd.Series, spec: WindowSpec) -> tuple[np.ndarray, list[str]]:
        """Which pages are popular at each window (shape (n_windows, n_pages), from the clicks before it)
        and the pages modelled: at most ``max_pages``, the most popular first."""
        span = max(1, int(pd.Timedelta(self.share_window) // spec.length))
        every = counts.wide(starts, self._candidates(counts, starts, span))
        site = counts.frame.groupby("window_start")["clicks"].sum()
        site = site.reindex(pd.DatetimeIndex(pd.to_datetime(starts, utc=True))).fillna(0).to_numpy("float64")
        trailing = _trailing(np.column_stack([every.to_numpy(dtype="float64"), site]), span)
        trailing, total = trailing[:, :-1], trailing[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, trailing / total, 0.0)
        full = (np.arange(len(share)) >= span)[:, None]  # a whole share window behind it
        popular = (share >= self.min_share) & full
        peak = np.where(popular, share, 0.0).max(axis=0) if len(share) else np.zeros(share.shape[1])
        order = [int(j) for j in np.argsort(-peak, kind="stable") if peak[j] > 0][: self.max_pages]
        return popular[:, order], [str(every.columns[j]) for j in order]


def _trailing(values: np.ndarray, span: int) -> np.ndarray:
    """Column sums over the ``span`` rows before each row (shape of ``values``; 0 for the first row)."""
    total = np.cumsum(values, axis=0)
    total[span:] -= total[:-span].copy()
    return np.vstack([np.zeros((1, values.shape[1])), total[:-1]])
