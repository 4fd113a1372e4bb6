"""The per-page detector (``baseline-pages``): the clicks of each popular page against what is normal for
that page at its local time of day and weekday, so a page that stops getting clicks (a broken home page,
checkout or landing page) is seen even when the site's totals hide it.

A page is *popular* at a window when it had at least ``min_share`` (3 %) of the site's clicks over the
``share_window`` before it (a day by default); up to ``max_pages`` popular pages get a
:class:`~clickstream_anomaly.baseline.TimeAwareBaseline` of their clicks (a count column), which first
learns the share window before the page became popular, and a window is judged only on the pages popular
at it. On a popular page only a fall is reported by default (``directions=("LOW",)``): more clicks than
usual there is the site's traffic, which the site-wide baseline sees. A page that is *not* popular and
surges (at least ``surge_share``, 10 %, of a window's clicks and ``surge_z``, 6, Poisson spreads above
its clicks per window before; ``surge_z=inf``: off) is a page storm, reported ``HIGH``. Each page adds
tests, so the pair threshold is stricter than the site's (3.5 spreads twice in a row), there is no drift
test, and a window where the page is expected to get fewer than
``min_expected`` (5) clicks is not judged (none of 3 expected clicks is not news).

The detector needs the clicks per window and page (:class:`~clickstream_anomaly.features.PageCounts`,
filled when the windows are computed from clicks, or the ``page_clicks`` of the features stream's window
records); on windows read from a windows file it gives no verdict (every detection a warm-up). Which pages
are popular and modelled, and when, are the rules of :mod:`~clickstream_anomaly.baseline.pages`,
which the streaming engines run one window at a time: the same windows give the same detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..base import BaseEstimator
from ..baseline.pages import (
    PAGE_KEY,
    PagePicker,
    PageSettings,
    PageVerdict,
    judged_scores,
    learnable_history,
    page_detection,
    page_frame,
    verdict,
)
from ..features import PageCounts, windows_to_records
from ..records import PAGES, Detection
from ..windowspec import WindowSpec

__all__ = ["NO_PAGE_COUNTS", "PAGE_KEY", "PageBaselineDetector"]

NO_PAGE_COUNTS = (
    "no clicks per page (a windows CSV, or window records without page_clicks): baseline-pages gives no verdict"
)


@dataclass(kw_only=True, repr=False, eq=False)
class PageBaselineDetector(BaseEstimator):
    """Detections from one time-aware baseline per popular page (see the module docstring).

    ``pages`` holds the clicks per window and page of the windows given to :meth:`fit` and :meth:`detect`
    (a :class:`PageCounts` or its frame). Score in threshold units (1 = threshold), the page as the
    explanation's column (``page:/path``) with its direction, strength, expected clicks and band; the
    observed clicks of the page in ``extra["page_clicks"]``.
    """

    pages: PageCounts | pd.DataFrame | None = None
    timezone: str = PageSettings.timezone  # the defaults are PageSettings', the engines' settings
    min_share: float = PageSettings.min_share
    max_pages: int = PageSettings.max_pages
    share_window: str = PageSettings.share_window
    point_threshold: float = PageSettings.point_threshold
    pair_threshold: float = PageSettings.pair_threshold
    min_expected: float = PageSettings.min_expected
    directions: Sequence[str] = PageSettings.directions
    surge_share: float = PageSettings.surge_share
    surge_z: float = PageSettings.surge_z
    exclude: Sequence[tuple[Any, Any]] = ()
    options: dict[str, Any] = field(default_factory=dict)
    name: str = PAGES
    note: str = field(default="", init=False)
    history_: pd.DataFrame | None = field(default=None, init=False, repr=False)
    pages_: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.settings(PageSettings().freq)  # the settings' checks, at construction

    def settings(self, freq: str) -> PageSettings:
        """The rules' settings for windows of ``freq``."""
        return PageSettings(
            timezone=self.timezone,
            freq=freq,
            min_share=self.min_share,
            max_pages=self.max_pages,
            share_window=self.share_window,
            point_threshold=self.point_threshold,
            pair_threshold=self.pair_threshold,
            min_expected=self.min_expected,
            directions=tuple(self.directions),
            surge_share=self.surge_share,
            surge_z=self.surge_z,
            options=dict(self.options),
        )

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
        """One detection per window (a warm-up where no page is popular yet, or without page counts).

        The rules of :class:`~clickstream_anomaly.baseline.pages.PageStream`, with each page model
        fed its windows in one call per stretch it is modelled (the same numbers, faster)."""
        counts = self._counts()
        records = windows_to_records(windows)
        if counts is None:
            self.note = NO_PAGE_COUNTS
            return [Detection(w, self.name, 0.0, 1.0, False, warmup=True) for w in records]
        frame = windows if self.history_ is None else pd.concat([self.history_, windows], ignore_index=True)
        settings = self.settings(WindowSpec.of(windows).freq)
        starts = pd.to_datetime(frame["window_start"], utc=True).to_numpy(dtype="datetime64[ns]").astype("int64")
        per_window = {int(pd.Timestamp(k).value): v for k, v in counts.of_window().items()}
        picker = PagePicker(settings)
        picks = [picker.step(int(t), per_window.get(int(t), {})) for t in starts]
        n, first = len(starts), len(starts) - len(windows)
        verdicts: list[list[PageVerdict]] = [list(pick.surges) for pick in picks]
        seen: list[str] = []
        for page, lo, hi in _stretches(picks, n):
            seen += [page] if page not in seen else []
            back = int(np.searchsorted(starts, starts[lo] - settings.share_ns, side="left"))
            raw = np.array([per_window.get(int(t), {}).get(page, 0) for t in starts[back:hi]], dtype="float64")
            _, learned = learnable_history(starts[back:lo], raw[: lo - back])
            since = lo - len(learned)  # the model's first window: its history, as PagePicker.history gives it
            clicks = np.concatenate([learned, raw[lo - back :]])
            scores = settings.model().process(page_frame(starts[since:hi], clicks), exclude=self.exclude)
            popular = np.array([page in picks[r].popular for r in range(since, hi)])
            judged = judged_scores(settings, scores, popular)
            for r in range(max(lo, first), hi):
                verdicts[r].append(verdict(page, r - since, judged, scores, clicks[r - since]))
        self.pages_ = seen
        return [
            page_detection(
                win, verdicts[first + i], bool(picks[first + i].popular or picks[first + i].surges), self.name
            )
            for i, win in enumerate(records)
        ]


def _stretches(picks: Sequence[Any], n: int) -> list[tuple[str, int, int]]:
    """``(page, first row, end row)`` of each stretch of windows a page is modelled in (from the picks)."""
    out: list[tuple[str, int, int]] = []
    since: dict[str, int] = {}
    for r, pick in enumerate(picks):
        for page in pick.evicted:
            out.append((page, since.pop(page), r))
        for page in pick.created:
            since[page] = r
    out += [(page, lo, n) for page, lo in since.items()]
    return out
