"""The per-page detector's state, one window at a time: which pages are popular, which are modelled, and
one time-aware baseline of clicks per modelled page. The batch detector
(:class:`~clickstream_anomaly.detectors.pages.PageBaselineDetector`) and the streaming engines
(:class:`~clickstream_anomaly.streaming.detection.DetectorState`) run the same rules, so they give the
same detections on the same windows.

* **Popular** at a window: at least ``min_share`` of the clicks in most of the four parts of the
  ``share_window`` before it (the clicks per page the window records carry, ``page_clicks``), once a
  whole share window of history exists; a burst on one page (a page storm) does not make it popular.
* **Modelled**: a page gets a baseline when it first is popular, while fewer than ``max_pages`` are
  modelled, or in place of the modelled page with the fewest clicks over the share window that is not
  popular any more. A new model first learns the share window before it (the picker keeps it) from the
  page's first click there, so a page popular from the second day on is judged from then, as the site's
  own baseline is, and a page new in the share window does not learn that it had no clicks before.
* **Surging**: a page that is not popular and takes at least ``surge_share`` of a window's clicks, at
  least ``surge_z`` Poisson spreads (on the square-root scale) above its clicks per window before (the
  larger of its mean over the share window and over the last hour; 0 for a page new there), is
  anomalous, ``HIGH``: a page storm (a viral link, a bot on one page), which the site's features see
  only as more users. A page that keeps its new traffic (a renamed page) stops surging within the hour.
* A window without ``page_clicks`` (from a windows file, or open in an engine state of an earlier
  version) teaches nothing and gets no verdict.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .. import persist
from ..features import freq_ns
from ..records import PAGES, Detection, Window
from ..windowspec import DEFAULT_FREQ
from .detector import BAND_Z, BaselineScores, TimeAwareBaseline
from .model import ANSCOMBE

PAGE_KEY = "page:"  # explanation key of a page: "page:/checkout"
KIND = "detector.pages"
VERSION = 1


@dataclass(frozen=True)
class PageSettings:
    """The per-page detector's settings (see :class:`~clickstream_anomaly.detectors.pages.PageBaselineDetector`);
    ``options`` are further :class:`TimeAwareBaseline` parameters of every page model."""

    timezone: str = "UTC"
    freq: str = DEFAULT_FREQ
    min_share: float = 0.03
    max_pages: int = 10
    share_window: str = "1D"
    point_threshold: float = 5.0
    pair_threshold: float = 3.5
    min_expected: float = 5.0
    directions: tuple[str, ...] = ("LOW",)
    surge_share: float = 0.1
    surge_z: float = 6.0
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not 0 < self.min_share <= 1:
            raise ValueError(f"min_share must be in (0, 1], got {self.min_share}")
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {self.max_pages}")
        bad = [d for d in self.directions if d not in ("LOW", "HIGH")]
        if bad or not self.directions:
            raise ValueError(f"directions must be LOW and/or HIGH, got {list(self.directions)}")
        if not 0 < self.surge_share <= 1 or not self.surge_z > 0:
            raise ValueError(
                f"surge_share must be in (0, 1] and surge_z positive (inf: no surge test), got "
                f"{self.surge_share} and {self.surge_z}"
            )
        if self.share_ns < freq_ns(self.freq):
            raise ValueError(f"share_window must be at least one window ({self.freq}), got {self.share_window}")

    @property
    def share_ns(self) -> int:
        return int(pd.Timedelta(self.share_window).value)

    def model(self) -> TimeAwareBaseline:
        """A new, empty page model: a time-aware baseline of one count column, no drift or run test."""
        return TimeAwareBaseline(
            columns=("clicks",),
            count_columns=("clicks",),
            timezone=self.timezone,
            point_threshold=self.point_threshold,
            pair_threshold=self.pair_threshold,
            drift_threshold=math.inf,
            run_threshold=math.inf,
            window=self.freq,
            **self.options,
        ).fit(None)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "directions": list(self.directions), "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageSettings:
        return cls(**{**data, "directions": tuple(data["directions"])})


@dataclass(frozen=True)
class Pick:
    """What :meth:`PagePicker.step` decided at one window: the pages popular there, and the pages that
    got a model (``created``) or lost theirs (``evicted``) before it."""

    popular: frozenset[str]
    created: tuple[str, ...] = ()
    evicted: tuple[str, ...] = ()
    surges: tuple[PageVerdict, ...] = ()


BLOCKS = 4  # parts of the share window a page must be popular in most of


@dataclass
class _Block:
    """One part of the share window: its known windows (start ns, page -> clicks), oldest first, and
    their sums."""

    entries: deque[tuple[int, dict[str, int]]] = field(default_factory=deque)
    sums: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def add(self, entry: tuple[int, dict[str, int]]) -> None:
        self.entries.append(entry)
        for page, n in entry[1].items():
            self.sums[page] = self.sums.get(page, 0) + n
        self.total += sum(entry[1].values())

    def pop(self) -> tuple[int, dict[str, int]]:
        entry = self.entries.popleft()
        for page, n in entry[1].items():
            left = self.sums[page] - n
            if left:
                self.sums[page] = left
            else:
                del self.sums[page]
        self.total -= sum(entry[1].values())
        return entry


@dataclass
class PagePicker:
    """Which pages are popular and which are modelled, from the clicks per page of the windows seen
    (module docstring). The known windows of the last share window are kept in :data:`BLOCKS` parts of
    equal length, oldest first; a page is popular when it has ``min_share`` of the clicks in more than
    half of the parts with clicks, so a burst on one page (a page storm, a crawler) does not make it
    popular, and its model does not learn the burst as the page's normal."""

    settings: PageSettings
    blocks: list[_Block] = field(default_factory=lambda: [_Block() for _ in range(BLOCKS)])
    first: int | None = None  # the first window's start (ns)
    modelled: list[str] = field(default_factory=list)  # in the order their models were made

    def _advance(self, start: int) -> None:
        """Move the windows on to the part they belong to at ``start``; the oldest leave."""
        share = self.settings.share_ns
        horizon = start - share
        for b in reversed(range(BLOCKS)):  # block b: from horizon + b * share / BLOCKS; newest first,
            block = self.blocks[b]  # so a window can move on by several parts after a gap
            while block.entries and block.entries[0][0] < horizon + b * share // BLOCKS:
                entry = block.pop()
                if b:
                    self.blocks[b - 1].add(entry)  # entries only move towards older parts

    def popular_now(self) -> list[str]:
        """The pages popular before the next window, most clicks first (ties by name)."""
        counted = [b for b in self.blocks if b.total > 0]
        need = len(counted) // 2 + 1
        votes: dict[str, int] = {}
        for block in counted:
            bar = self.settings.min_share * block.total
            for page, n in block.sums.items():
                if n >= bar:
                    votes[page] = votes.get(page, 0) + 1
        total = {p: sum(b.sums.get(p, 0) for b in self.blocks) for p in votes}
        return sorted((p for p, v in votes.items() if v >= need), key=lambda p: (-total[p], p))

    def step(self, start: int, counts: dict[str, int] | None) -> Pick:
        """Decide at the window starting at ``start`` (ns) from the windows before it, then remember its
        ``counts`` (page -> clicks; ``None``: unknown, not remembered)."""
        self._advance(start)
        full = self.first is not None and self.first <= start - self.settings.share_ns
        popular = self.popular_now() if full else []
        chosen = frozenset(popular)
        created: list[str] = []
        evicted: list[str] = []
        for page in popular:
            if page in self.modelled:
                continue
            if len(self.modelled) >= self.settings.max_pages:
                idle = [q for q in self.modelled if q not in chosen]
                if not idle:
                    break
                victim = min(idle, key=lambda q: (sum(b.sums.get(q, 0) for b in self.blocks), q))
                self.modelled.remove(victim)
                evicted.append(victim)
            self.modelled.append(page)
            created.append(page)
        surges = self.surges(start, counts, chosen) if full and counts else ()
        if counts is not None:
            self.blocks[-1].add((start, {p: int(n) for p, n in counts.items() if n > 0}))
        if self.first is None:
            self.first = start
        return Pick(chosen, tuple(created), tuple(evicted), surges)

    def surges(self, start: int, counts: dict[str, int], popular: frozenset[str]) -> tuple[PageVerdict, ...]:
        """The pages of the window at ``start`` (ns) with ``counts`` that are not ``popular`` and surge
        (module docstring), judged against their clicks per known window before."""
        s = self.settings
        total = sum(counts.values())
        known = sum(len(b.entries) for b in self.blocks)
        if not math.isfinite(s.surge_z) or total <= 0 or not known:
            return ()
        since = start - SURGE_RECENT_NS
        recent = [c for block in self.blocks for t, c in block.entries if t >= since]
        out = []
        for page, n in counts.items():
            if page in popular or n < s.surge_share * total:
                continue
            mean = sum(b.sums.get(page, 0) for b in self.blocks) / known
            if recent:
                mean = max(mean, sum(c.get(page, 0) for c in recent) / len(recent))
            root = math.sqrt(mean + ANSCOMBE)
            z = (math.sqrt(n + ANSCOMBE) - root) / POISSON_SPREAD
            if z < s.surge_z:
                continue
            score = min(z / s.surge_z, n / (s.surge_share * total))
            low, high = (max(max(root + k * BAND_Z * POISSON_SPREAD, 0.0) ** 2 - ANSCOMBE, 0.0) for k in (-1, 1))
            out.append(PageVerdict(page, score, z, mean, low, high, float(n)))
        return tuple(sorted(out, key=lambda v: v.page))

    def history(self, page: str, before: int) -> tuple[np.ndarray, np.ndarray]:
        """What a new model of ``page`` learns: the kept windows before ``before`` (ns), as window starts
        (ns) and the page's clicks, cleaned by :func:`learnable_history`."""
        entries = [e for b in self.blocks for e in b.entries if e[0] < before]
        starts = np.array([s for s, _ in entries], dtype="int64")
        clicks = np.array([c.get(page, 0) for _, c in entries], dtype="float64")
        return learnable_history(starts, clicks)

    def to_meta(self) -> dict[str, Any]:
        return {
            "blocks": [[[s, dict(sorted(c.items()))] for s, c in b.entries] for b in self.blocks],
            "first": self.first,
            "modelled": list(self.modelled),
        }

    @classmethod
    def from_meta(cls, settings: PageSettings, meta: dict[str, Any]) -> PagePicker:
        picker = cls(settings, first=meta["first"], modelled=list(meta["modelled"]))
        for block, saved in zip(picker.blocks, meta["blocks"], strict=True):
            for start, counts in saved:
                block.add((int(start), {str(p): int(n) for p, n in counts.items()}))
        return picker


POISSON_SPREAD = 0.5  # the spread of Poisson counts on the square-root scale
SURGE_RECENT_NS = 3_600_000_000_000  # a surging page is also judged against its last hour
CLEAN_HALF_WIDTH = 18  # windows either side of the running median that cleans a new model's history


def learnable_history(starts: np.ndarray, clicks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A new page model's history (shape (n,) each: window starts in ns, the page's clicks): from the
    first window with a click on the page (a page new in the share window did not have 0 clicks before),
    each count capped where it is far above the running median of the page's clicks
    (:data:`CLEAN_HALF_WIDTH` windows either side, 3 hours of 10-minute windows): a burst on the page in
    these windows (a bot flood, a storm), learned by a model without a history yet, would be its normal
    at that time of day every day after."""
    if not (clicks > 0).any():
        return starts[:0], clicks[:0]
    first = int(np.argmax(clicks > 0))
    starts, clicks = starts[first:], clicks[first:]
    h = CLEAN_HALF_WIDTH
    med = np.array([np.median(clicks[max(0, i - h) : i + h + 1]) for i in range(len(clicks))])
    return starts, np.minimum(clicks, np.ceil(2.0 * med + 3.0 * np.sqrt(med) + 3.0))


def page_frame(starts: np.ndarray, clicks: np.ndarray) -> pd.DataFrame:
    """A page model's input: ``window_start`` (from ns) and ``clicks``."""
    return pd.DataFrame({"window_start": pd.to_datetime(starts, utc=True), "clicks": clicks})


def judged_scores(settings: PageSettings, scores: BaselineScores, popular: np.ndarray) -> np.ndarray:
    """A page model's scores where its verdict counts (0 elsewhere): the page popular at the window, the
    model warm, at least ``min_expected`` clicks expected and the deviation in an allowed direction."""
    side = np.where(scores.z[:, 0] >= 0, "HIGH", "LOW")
    with np.errstate(invalid="ignore"):
        busy = scores.expected[:, 0] >= settings.min_expected
    judged = popular & scores.warm & busy & np.isin(side, list(settings.directions))
    return np.where(judged, scores.column_score[:, 0], 0.0)


@dataclass(frozen=True)
class PageVerdict:
    """One modelled page at one window: its score (0 where not judged), deviation and band."""

    page: str
    score: float
    z: float
    expected: float
    low: float
    high: float
    clicks: float


def page_detection(window: Window, verdicts: Sequence[PageVerdict], any_popular: bool, name: str = PAGES) -> Detection:
    """The window's detection: the page with the highest score (ties by page name) as its explanation; a
    warm-up where no page is popular yet."""
    if not any_popular:
        return Detection(window, name, 0.0, 1.0, False, warmup=True)
    best = min(verdicts, key=lambda v: (-v.score, v.page), default=None)
    if best is None or best.score <= 0:
        return Detection(window, name, 0.0, 1.0, False)
    key = PAGE_KEY + best.page
    return Detection(
        window=window,
        detector=name,
        score=best.score,
        threshold=1.0,
        is_anomaly=bool(best.score >= 1.0),
        attribution={key: best.score},
        direction={key: "HIGH" if best.z >= 0 else "LOW"},
        strength={key: abs(best.z)},
        expected={key: best.expected},
        low={key: best.low},
        high={key: best.high},
        extra={"page": best.page, "page_clicks": best.clicks},
    )


def verdict(page: str, row: int, judged: np.ndarray, scores: BaselineScores, clicks: float) -> PageVerdict:
    """Row ``row`` of a page model's scores as a :class:`PageVerdict`."""
    return PageVerdict(
        page,
        float(judged[row]),
        float(scores.z[row, 0]),
        float(scores.expected[row, 0]),
        float(scores.low[row, 0]),
        float(scores.high[row, 0]),
        float(clicks),
    )


@dataclass
class PageStream:
    """The per-page detector, one window at a time (module docstring): a :class:`PagePicker` and the
    modelled pages' baselines; saved with :meth:`to_bytes`."""

    settings: PageSettings = field(default_factory=PageSettings)
    picker: PagePicker | None = None
    models: dict[str, TimeAwareBaseline] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.picker is None:
            self.picker = PagePicker(self.settings)

    def step(self, window: Window, *, exclude: Sequence[tuple[Any, Any]] = ()) -> Detection:
        """Judge ``window`` (its ``page_clicks``) against the modelled pages, then learn it."""
        assert self.picker is not None
        start = int(pd.Timestamp(window.window_start).value)
        counts = window.page_clicks
        pick = self.picker.step(start, counts)
        for page in pick.evicted:
            del self.models[page]
        for page in pick.created:
            model = self.models[page] = self.settings.model()
            starts, clicks = self.picker.history(page, start)
            if len(starts):
                model.process(page_frame(starts, clicks), exclude=exclude)
        if counts is None:
            return Detection(window, PAGES, 0.0, 1.0, False, warmup=True)
        verdicts = list(pick.surges)
        for page, model in self.models.items():
            n = float(counts.get(page, 0))
            scores = model.process(page_frame(np.array([start]), np.array([n])), exclude=exclude)
            judged = judged_scores(self.settings, scores, np.array([page in pick.popular]))
            verdicts.append(verdict(page, 0, judged, scores, n))
        return page_detection(window, verdicts, bool(pick.popular or pick.surges))

    def with_rules(self, **rules: Any) -> PageStream:
        """This state with the settings ``rules`` (``surge_share``, ``surge_z``: the picker's verdict
        rules; :mod:`.rules`), keeping all it learned. Returns ``self``."""
        assert self.picker is not None
        self.settings = self.picker.settings = replace(self.settings, **rules)
        return self

    def to_bytes(self) -> bytes:
        """A versioned state (:mod:`clickstream_anomaly.persist`, kind ``detector.pages``)."""
        assert self.picker is not None
        meta = {"settings": persist.encode_infinite(self.settings.to_dict()), **self.picker.to_meta()}  # surge_z inf
        arrays = {
            f"model{i}": np.frombuffer(self.models[p].to_bytes(), dtype=np.uint8) for i, p in enumerate(self.models)
        }
        meta["models"] = list(self.models)
        return persist.dumps(KIND, VERSION, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> PageStream:
        st = persist.loads(data, KIND, versions={VERSION})
        settings = PageSettings.from_dict(persist.decode_infinite(st.meta["settings"]))
        picker = PagePicker.from_meta(settings, st.meta)
        models = {
            str(p): TimeAwareBaseline.from_bytes(st.arrays[f"model{i}"].tobytes())
            for i, p in enumerate(st.meta["models"])
        }
        return cls(settings, picker, models)
