"""Clicks -> fixed-length window features (10 minutes by default).

For each window ``[window_start, window_start + freq)`` (aligned to the Unix epoch, so 10-minute windows
start at :00, :10, ...):

* ``urls``     = number of distinct pages clicked in the window;
* ``users``    = number of distinct users who clicked in the window;
* ``clicks``   = number of click events in the window;
* ``residual`` = ``clicks - users * R``: the clicks not explained by the active users, where ``R`` is the
  site's usual clicks per user: the median of ``clicks / users`` over the previous
  :data:`RESIDUAL_LOOKBACK` of windows that had users (one day: 144 ten-minute windows; fewer at the start
  of a series; ``R = 1`` when there are none). The median keeps ``R`` from being dragged by the incidents
  themselves (a ratio of sums would stay inflated for a day after a user miscount). The batch
  computation here and the streaming aggregator (:class:`ResidualState`) run the same ``numpy.nanmedian``
  over the same values, so they give bit-identical results. The residual is ~0 in normal traffic whatever
  the time of day, and separates the incident kinds: a user-miscount bug (users collapse, clicks go on)
  drives it HIGH with users LOW; a bot flood drives it HIGH with users flat; a page storm of one-click
  visitors drives it LOW.

A window with no clicks is an observation (all zero), never a missing row, so an outage shows up.

**Sampled sources** (CloudFront real-time logs at a sampling rate *s* < 100 %): ``clicks`` is scaled by
100/*s* (:func:`scale_clicks`, the one place both the batch and the streaming windows do it), before the
residual, so ``R`` and the residual are in the same scaled units. ``users`` and ``urls`` are distinct
counts of what was sampled and cannot be scaled: they stay as seen (docs/sources.md, "Sampling").
Large inputs are processed in chunks: memory holds only the distinct (window, user) and (window, page)
pairs of windows still open, plus one row per finished window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .clicks_csv import BadLines, iter_click_chunks
from .progress import Progress
from .records import CLICK_COLUMNS, FEATURE_COLUMNS, PAGES_PER_WINDOW, WINDOW_COLUMNS, RecordError, Window
from .sources import Filtered, SourceSettings, iter_chunks
from .windowspec import DEFAULT_FREQ, WindowSpec

DEFAULT_LATENESS = "1h"
#: At most this many windows from one input (``--max-windows``): 19 years of 10-minute windows. Two clicks
#: dated 1900 and 2100 would otherwise write 10.5 million empty windows (326 MB).
MAX_WINDOWS = 1_000_000
RESIDUAL_LOOKBACK = "1D"


def lookback_windows(freq: str | pd.Timedelta = DEFAULT_FREQ, lookback: str = RESIDUAL_LOOKBACK) -> int:
    """Number of windows in the residual's look-back (144 for 10-minute windows and one day)."""
    return max(1, int(pd.Timedelta(lookback).value // freq_ns(freq)))


def _ratios(clicks: np.ndarray, users: np.ndarray) -> np.ndarray:
    """``clicks / users`` per window, NaN where there were no users."""
    c = np.asarray(clicks, dtype="float64")
    u = np.asarray(users, dtype="float64")
    out = np.full(c.shape, np.nan)
    np.divide(c, u, out=out, where=u > 0)
    return out


def _usual_ratio(ratios: np.ndarray) -> float:
    """The median of the non-NaN ratios, 1.0 when there are none (the one formula both paths use)."""
    if ratios.size == 0 or np.isnan(ratios).all():
        return 1.0
    return float(np.nanmedian(ratios))


def residuals(clicks: np.ndarray, users: np.ndarray, lookback: int) -> np.ndarray:
    """``(n,)`` residuals of consecutive windows (see the module docstring)."""
    ratios = _ratios(clicks, users)
    usual = np.array([_usual_ratio(ratios[max(0, t - lookback) : t]) for t in range(len(ratios))])
    return np.asarray(clicks, dtype="float64") - np.asarray(users, dtype="float64") * usual


@dataclass
class ResidualState:
    """Streaming twin of :func:`residuals`: feed windows in time order, get the same numbers.

    Keeps the (clicks, users) of the last ``lookback`` windows: bounded state.
    """

    lookback: int = 144
    history: list[tuple[int, int]] = field(default_factory=list)

    def residual(self, clicks: int, users: int) -> float:
        """Residual of the next window, then remember it for the following ones."""
        if self.history:
            hist = np.asarray(self.history, dtype="float64")
            usual = _usual_ratio(_ratios(hist[:, 0], hist[:, 1]))
        else:
            usual = 1.0
        self.history.append((int(clicks), int(users)))
        if len(self.history) > self.lookback:
            del self.history[: len(self.history) - self.lookback]
        return float(np.float64(clicks) - np.float64(users) * usual)

    def to_dict(self) -> dict:
        return {"lookback": self.lookback, "history": [list(h) for h in self.history]}

    @classmethod
    def from_dict(cls, data: dict) -> ResidualState:
        return cls(int(data["lookback"]), [(int(c), int(u)) for c, u in data["history"]])


def scale_clicks(clicks: int | np.ndarray, sampling_rate: int = 100) -> Any:
    """Estimated clicks of a source that logs ``sampling_rate`` percent of the requests:
    ``clicks * 100 / sampling_rate`` rounded half up to an integer (exact integer arithmetic; at 100 the
    counts are returned unchanged)."""
    if not 1 <= int(sampling_rate) <= 100:
        raise ValueError(f"sampling_rate must be 1-100 (percent), got {sampling_rate}")
    if sampling_rate == 100:
        return clicks
    return (clicks * 200 + sampling_rate) // (2 * sampling_rate)


def freq_ns(freq: str | pd.Timedelta | WindowSpec) -> int:
    """Window length in nanoseconds; raises ``ValueError`` for a non-positive or unparsable frequency."""
    return WindowSpec.parse(freq).ns


@dataclass
class PageCounts:
    """Clicks per window and page, filled by :class:`WindowAccumulator` (and so by
    :func:`compute_windows` and :func:`windows_from_frame`) when given one.

    ``frame`` has one row per window and page with clicks: ``window_start`` (datetime64 UTC), ``page``
    (str) and ``clicks`` (int, scaled like the window's for a sampled source); a window without a click
    on a page has no row for it, and a window keeps its :data:`PAGES_PER_WINDOW` most clicked pages
    (memory stays bounded when every URL is distinct; a page below them has under 1/200 of the window).
    The per-page detector (:mod:`clickstream_anomaly.detectors.pages`) reads it; the window features do
    not depend on it.
    """

    frame: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {
                "window_start": pd.to_datetime(pd.Series([], dtype="int64"), utc=True),
                "page": pd.Series([], dtype="object"),
                "clicks": pd.Series([], dtype="int64"),
            }
        )
    )

    def wide(self, starts: pd.Series | pd.DatetimeIndex, pages: Iterable[str] | None = None) -> pd.DataFrame:
        """Clicks as a (windows x pages) frame indexed by ``starts`` (0 where a page had none); ``pages``
        (default: every page) picks the columns."""
        index = pd.DatetimeIndex(pd.to_datetime(starts, utc=True))
        table = self.frame.pivot_table(index="window_start", columns="page", values="clicks", aggfunc="sum")
        if pages is not None:
            table = table.reindex(columns=list(pages))
        return table.reindex(index).fillna(0).astype("int64")

    def of_window(self) -> dict[pd.Timestamp, dict[str, int]]:
        """The clicks per page of each window with clicks (page -> clicks), keyed by window start."""
        out: dict[pd.Timestamp, dict[str, int]] = {}
        for start, page, clicks in zip(
            self.frame["window_start"], self.frame["page"], self.frame["clicks"], strict=True
        ):
            out.setdefault(start, {})[str(page)] = int(clicks)
        return out

    @classmethod
    def from_windows(cls, records: Iterable[Window]) -> PageCounts | None:
        """The page counts the records carry (``page_clicks``); ``None`` when one of them has none."""
        rows: list[tuple[Any, str, int]] = []
        for w in records:
            if w.page_clicks is None:
                return None
            rows += [(w.window_start, p, c) for p, c in w.page_clicks.items() if c > 0]
        frame = cls().frame
        if rows:
            starts, pages, clicks = zip(*rows, strict=True)
            frame = pd.DataFrame(
                {
                    "window_start": pd.to_datetime(pd.Series(starts), utc=True),
                    "page": pd.Series(pages, dtype="object"),
                    "clicks": pd.Series(clicks, dtype="int64"),
                }
            )
        return cls(frame)


@dataclass
class WindowAccumulator:
    """Incremental, chunked computation of window features with bounded memory.

    Feed chunks of clicks (``ts`` int64 ns UTC, ``user``, ``page``) with :meth:`add`; windows more than
    ``lateness`` older than the newest click seen are finished. A click arriving for a finished window
    raises ``RecordError`` (sort the input or raise ``lateness``). :meth:`result` returns every window
    from the first to the last (or ``start``/``end`` when given), empty ones included, with ``clicks``
    scaled for a ``sampling_rate`` below 100 (:func:`scale_clicks`). With ``pages``, the clicks per window
    and page are counted too and :meth:`result` fills it.
    """

    freq: str = DEFAULT_FREQ
    lateness: str = DEFAULT_LATENESS
    sampling_rate: int = 100
    pages: PageCounts | None = None
    _page_clicks: list[pd.Series] = field(default_factory=list, init=False)
    _freq_ns: int = field(init=False)
    _late_ns: int = field(init=False)
    _open_users: list[pd.DataFrame] = field(default_factory=list, init=False)
    _open_pages: list[pd.DataFrame] = field(default_factory=list, init=False)
    _open_clicks: pd.Series = field(init=False)
    _done: list[pd.DataFrame] = field(default_factory=list, init=False)
    _finished_before: int | None = field(default=None, init=False)
    _max_window: int | None = field(default=None, init=False)
    _min_window: int | None = field(default=None, init=False)
    clicks_seen: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._freq_ns = freq_ns(self.freq)
        self._late_ns = int(pd.Timedelta(self.lateness).value)
        self._open_clicks = pd.Series(dtype="int64")

    def add(self, chunk: pd.DataFrame) -> None:
        """Add clicks: ``ts`` (int64 ns since epoch, UTC), ``user``, ``page`` (strings)."""
        if chunk.empty:
            return
        ts = chunk["ts"].to_numpy(dtype="int64")
        win = (ts // self._freq_ns) * self._freq_ns
        lo, hi = int(win.min()), int(win.max())
        if self._finished_before is not None and lo < self._finished_before:
            when = pd.Timestamp(lo, tz="UTC")
            raise RecordError(
                f"click for window {when.isoformat()} arrived after that window was finished: the input is "
                f"out of time order by more than the allowed lateness ({self.lateness}); sort it by "
                "timestamp or raise --lateness"
            )
        self.clicks_seen += len(ts)
        self._min_window = lo if self._min_window is None else min(self._min_window, lo)
        self._max_window = hi if self._max_window is None else max(self._max_window, hi)
        self._open_users.append(_distinct_pairs(win, chunk["user"]))
        self._open_pages.append(_distinct_pairs(win, chunk["page"]))
        if self.pages is not None:
            pairs = pd.DataFrame({"w": win, "page": chunk["page"].to_numpy()})
            self._page_clicks.append(pairs.groupby(["w", "page"], sort=False).size())
            self._compact_pages(self._finished_before)
        counts = pd.Series(win).value_counts()
        self._open_clicks = self._open_clicks.add(counts, fill_value=0).astype("int64")
        self._finish(self._max_window - self._late_ns)

    def _finish(self, before: int) -> None:
        """Turn windows starting before ``before`` into finished rows; keep the rest open."""
        users = pd.concat(self._open_users, ignore_index=True) if self._open_users else None
        pages = pd.concat(self._open_pages, ignore_index=True) if self._open_pages else None
        if users is None or pages is None:
            return
        self._finished_before = before if self._finished_before is None else max(self._finished_before, before)
        if not (users["w"] < before).any():
            # Nothing to finish; compact the open pairs so memory stays bounded.
            self._open_users = [users.drop_duplicates(ignore_index=True)]
            self._open_pages = [pages.drop_duplicates(ignore_index=True)]
            return
        done_u = users[users["w"] < before].drop_duplicates()
        done_p = pages[pages["w"] < before].drop_duplicates()
        clicks = self._open_clicks[self._open_clicks.index < before]
        frame = pd.DataFrame(
            {
                "w": clicks.index.to_numpy(dtype="int64"),
                "clicks": clicks.to_numpy(dtype="int64"),
            }
        )
        frame["users"] = frame["w"].map(done_u.groupby("w").size()).fillna(0).astype("int64")
        frame["urls"] = frame["w"].map(done_p.groupby("w").size()).fillna(0).astype("int64")
        self._done.append(frame)
        self._open_users = [users[users["w"] >= before].drop_duplicates(ignore_index=True)]
        self._open_pages = [pages[pages["w"] >= before].drop_duplicates(ignore_index=True)]
        self._open_clicks = self._open_clicks[self._open_clicks.index >= before]

    def result(
        self,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        *,
        max_windows: int | None = MAX_WINDOWS,
    ) -> pd.DataFrame:
        """All windows as a frame in :data:`WINDOW_COLUMNS` order (``window_start`` datetime64 UTC).

        ``start``/``end`` (inclusive window starts) extend or cut the range, e.g. to show an outage at
        the very end of the data. More than ``max_windows`` windows (``None``: no limit) raise
        ``ValueError`` naming the range, before any is built.
        """
        lo = self._min_window if start is None else _floor(start, self._freq_ns)
        hi = self._max_window if end is None else _floor(end, self._freq_ns)
        if lo is not None and hi is not None and max_windows is not None:
            n = (hi - lo) // self._freq_ns + 1
            if n > max_windows:
                first, last = (pd.Timestamp(v, tz="UTC").isoformat() for v in (lo, hi))
                raise ValueError(
                    f"the windows would run from {first} to {last}: {n:,} windows of {self.freq}, more than "
                    f"--max-windows {max_windows:,}. A mis-dated click? Check the first and last timestamps; "
                    "--start/--end cut the range, a larger --max-windows allows it"
                )
        self._finish(np.iinfo(np.int64).max)
        done = (
            pd.concat(self._done, ignore_index=True)
            if self._done
            else pd.DataFrame({"w": [], "clicks": [], "users": [], "urls": []}, dtype="int64")
        )
        done = done.groupby("w", sort=True).sum()
        if lo is None or hi is None:
            return empty_windows()
        index = np.arange(lo, hi + 1, self._freq_ns, dtype="int64")
        done = done.reindex(index, fill_value=0)
        out = pd.DataFrame(
            {
                "window_start": pd.to_datetime(index, utc=True),
                "urls": done["urls"].to_numpy(dtype="int64"),
                "users": done["users"].to_numpy(dtype="int64"),
                "clicks": scale_clicks(done["clicks"].to_numpy(dtype="int64"), self.sampling_rate),
            }
        )
        out["residual"] = residuals(out["clicks"].to_numpy(), out["users"].to_numpy(), lookback_windows(self.freq))
        if self.pages is not None:
            self.pages.frame = self._page_frame(lo, hi)
        return WindowSpec.parse(self.freq).attach(out[list(WINDOW_COLUMNS)])

    def _compact_pages(self, before: int | None) -> None:
        """Sum the page counts gathered so far; windows starting before ``before`` (finished: no click can
        join them) keep their :data:`PAGES_PER_WINDOW` most clicked pages."""
        counts = pd.concat(self._page_clicks).groupby(level=[0, 1], sort=True).sum()
        if before is not None:
            done = counts.index.get_level_values(0) < before
            if done.any():  # (an empty nlargest has a flat index, and the concatenation would lose the levels)
                top = counts[done].groupby(level=0, group_keys=False).nlargest(PAGES_PER_WINDOW)
                counts = pd.concat([top, counts[~done]])
        self._page_clicks = [counts]

    def _page_frame(self, lo: int, hi: int) -> pd.DataFrame:
        """The clicks per window and page of the windows from ``lo`` to ``hi`` (see :class:`PageCounts`)."""
        if not self._page_clicks:
            return PageCounts().frame
        self._compact_pages(np.iinfo(np.int64).max)
        counts = self._page_clicks[0].sort_index()
        w = counts.index.get_level_values(0).to_numpy(dtype="int64")
        keep = (w >= lo) & (w <= hi)
        return pd.DataFrame(
            {
                "window_start": pd.to_datetime(w[keep], utc=True),
                "page": counts.index.get_level_values(1).to_numpy()[keep],
                "clicks": scale_clicks(counts.to_numpy(dtype="int64")[keep], self.sampling_rate),
            }
        )


def _floor(value: str | pd.Timestamp, step: int) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return (int(ts.value) // step) * step


def _distinct_pairs(win: np.ndarray, keys: pd.Series) -> pd.DataFrame:
    """Distinct (window, key) pairs of one chunk as a frame ``w, k``."""
    codes, uniques = pd.factorize(keys)
    n = max(len(uniques), 1)
    wcodes, wuniq = pd.factorize(win)
    pair = pd.unique(wcodes.astype("int64") * n + codes)
    return pd.DataFrame({"w": wuniq[pair // n], "k": uniques[pair % n]})


def empty_windows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "window_start": pd.to_datetime(pd.Series([], dtype="int64"), utc=True),
            **{c: pd.Series([], dtype="float64" if c == "residual" else "int64") for c in FEATURE_COLUMNS},
        }
    )


def windows_from_frame(
    clicks: pd.DataFrame,
    freq: str = DEFAULT_FREQ,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    sampling_rate: int = 100,
    pages: PageCounts | None = None,
) -> pd.DataFrame:
    """Window features of an in-memory clicks frame (``timestamp`` datetime-like, ``user``, ``page``);
    ``pages`` is filled with the clicks per window and page."""
    acc = WindowAccumulator(freq=freq, lateness="3650D", sampling_rate=sampling_rate, pages=pages)
    ts = pd.to_datetime(clicks["timestamp"], utc=True, format="ISO8601")
    acc.add(
        pd.DataFrame(
            {
                "ts": ts.to_numpy(dtype="datetime64[ns]").astype("int64"),
                "user": clicks["user"].astype("str").reset_index(drop=True),
                "page": clicks["page"].astype("str").reset_index(drop=True),
            }
        )
    )
    return acc.result(start=start, end=end)


def compute_windows(  # noqa: PLR0913  (the reading options are keyword-only)
    path: str | Path,
    freq: str = DEFAULT_FREQ,
    *,
    skip_bad: bool = False,
    bad: BadLines | None = None,
    lateness: str = DEFAULT_LATENESS,
    chunk_rows: int = 1_000_000,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    progress: Progress | None = None,
    fmt: str | None = None,
    settings: SourceSettings | None = None,
    filtered: Filtered | None = None,
    max_windows: int | None = MAX_WINDOWS,
    pages: PageCounts | None = None,
) -> pd.DataFrame:
    """Window features of a click log, streamed in chunks of ``chunk_rows`` rows (at most ``max_windows``
    windows: :meth:`WindowAccumulator.result`); ``pages`` is filled with the clicks per window and page.

    ``fmt`` None reads a clicks CSV; a :data:`~clickstream_anomaly.sources.FORMATS` name (``auto`` included)
    reads that source with ``settings``, counting the requests that are not clicks in ``filtered``, and
    scales ``clicks`` by its ``sampling_rate``.
    """
    rate = settings.sampling_rate if (fmt is not None and settings is not None) else 100
    acc = WindowAccumulator(freq=freq, lateness=lateness, sampling_rate=rate, pages=pages)
    if fmt is None:
        chunks = iter_click_chunks(path, chunk_rows=chunk_rows, skip_bad=skip_bad, bad=bad)
    else:
        chunks = iter_chunks(path, fmt, settings, chunk_rows=chunk_rows, skip_bad=skip_bad, bad=bad, filtered=filtered)
    for chunk in chunks:
        acc.add(chunk)
        if progress is not None:
            progress.update(len(chunk))
    return acc.result(start=start, end=end, max_windows=max_windows)


WINDOWS_JSON = "windows-json"  # sniff_table's name for JSON Lines of window records (the features stream's)


def sniff_table(path: str | Path) -> str:
    """``"windows"``, :data:`WINDOWS_JSON` or ``"clicks"``: what a file (plain or gzip) holds, told apart by
    its CSV header, or by the first JSON object's ``window_start`` for JSON Lines of windows (the features
    stream's records, as the data lake keeps them).

    The one place the project decides this (``detect``, ``sagemaker prepare``). Raises ``ValueError``
    naming both accepted headers when it is neither, ``FileNotFoundError`` when ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if _first_json_object(path).get("window_start") is not None:
        return WINDOWS_JSON
    header = pd.read_csv(path, nrows=0, compression="infer").columns.str.strip().tolist()
    if header[: len(WINDOW_COLUMNS)] == list(WINDOW_COLUMNS) or set(WINDOW_COLUMNS) <= set(header):
        return "windows"
    if header == list(CLICK_COLUMNS):
        return "clicks"
    raise ValueError(
        f"{path}: header {','.join(header)} is neither a clicks CSV ({','.join(CLICK_COLUMNS)}) "
        f"nor a windows CSV ({','.join(WINDOW_COLUMNS)})"
    )


def _first_json_object(path: Path) -> dict[str, Any]:
    """The first line of ``path`` as a JSON object, or ``{}`` when it is not one."""
    from .clicks_csv import _open_text

    with _open_text(path) as fh:
        for line in fh:
            if line.strip():
                try:
                    value = json.loads(line)
                except ValueError:
                    return {}
                return value if isinstance(value, dict) else {}
    return {}


def read_windows_json(
    path: str | Path, *, skip_bad: bool = False, bad: BadLines | None = None
) -> tuple[pd.DataFrame, PageCounts | None]:
    """Read JSON Lines of window records (``Window.to_json``: the features stream's records, the data
    lake's ``features/`` objects, ``clickstream_job.local``'s ``windows.jsonl``), in ``window_start`` order.

    Returns the windows and their clicks per page (``None`` when a window has no ``page_clicks``). A window
    repeated with the same values (a re-delivery) counts once; a bad line (not JSON, a bad field, a
    fractional or too large count, a ``window_start`` repeated with other values) raises
    :class:`RecordError` naming the file and line, or with ``skip_bad`` is counted in ``bad`` and left out.
    """
    from .clicks_csv import _open_text, utf8_problem

    path = Path(path)
    source = str(path)
    seen: dict[Any, Window] = {}
    with _open_text(path) as fh:
        for number, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                problem = utf8_problem(text)
                if problem:
                    raise RecordError(problem)
                data = json.loads(text)
                if not isinstance(data, dict):
                    raise RecordError(f"not a JSON object: {text[:40]}")
                window = Window.from_mapping(data)
                _check_json_counts(data)
                before = seen.get(window.window_start)
                if before is not None and (before.to_stream_dict() != window.to_stream_dict()):
                    raise RecordError(f"window_start {data['window_start']} seen before with other values")
            except (RecordError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, RecordError) else f"not JSON: {exc}"
                if not skip_bad:
                    raise RecordError(reason, source=source, line=number) from None
                if bad is not None:
                    bad.add(source, number, reason, text)
                continue
            seen[window.window_start] = window
    records = [seen[k] for k in sorted(seen)]
    frame = records_to_windows(records)
    for col in ("urls", "users", "clicks"):
        frame[col] = frame[col].astype("int64")
    return WindowSpec.of(frame).attach(frame), PageCounts.from_windows(records)


def _check_json_counts(data: dict[str, Any]) -> None:
    """A JSON window's counts are whole, non-negative and at most :data:`MAX_WINDOW_VALUE`."""
    for col in ("urls", "users", "clicks"):
        value = float(data[col])
        if value < 0 or not value.is_integer() or value > MAX_WINDOW_VALUE:
            raise RecordError(f"bad {col} {data[col]!r}: a count is a whole number from 0 to 2**53")


def load_windows(
    path: str | Path,
    freq: str | WindowSpec = DEFAULT_FREQ,
    *,
    skip_bad: bool = False,
    bad: BadLines | None = None,
    lateness: str = DEFAULT_LATENESS,
) -> pd.DataFrame:
    """The windows of ``path``: a windows CSV or JSON Lines read as is, or a clicks CSV turned into ``freq``
    windows."""
    kind = sniff_table(path)
    if kind == "windows":
        return read_windows(path, skip_bad=skip_bad, bad=bad)
    if kind == WINDOWS_JSON:
        return read_windows_json(path, skip_bad=skip_bad, bad=bad)[0]
    return compute_windows(path, WindowSpec.parse(freq).freq, skip_bad=skip_bad, bad=bad, lateness=lateness)


#: The largest count or residual a windows CSV may hold (2**53: every integer below it is exact in float64).
MAX_WINDOW_VALUE = float(2**53)


def _window_row_problems(frame: pd.DataFrame, lines: list[int], reasons: list[str | None]) -> pd.DataFrame:
    """The typed windows of a frame of text columns; sets ``reasons[i]`` for each bad row (``lines``:
    each row's line number in the file)."""

    def flag(mask: np.ndarray, column: str, message: str) -> None:
        for pos in np.flatnonzero(mask).tolist():
            if reasons[pos] is None:
                reasons[pos] = message.format(c=column, v=frame[column].iat[pos])

    out = pd.DataFrame(
        {"window_start": pd.to_datetime(frame["window_start"], utc=True, format="ISO8601", errors="coerce")}
    )
    flag(out["window_start"].isna().to_numpy(), "window_start", "bad {c} {v!r}")
    for col in FEATURE_COLUMNS:
        arr = pd.to_numeric(frame[col], errors="coerce").astype("float64").to_numpy()
        flag(np.isnan(arr), col, "non-numeric {c} {v!r}")
        with np.errstate(invalid="ignore"):
            flag(~np.isfinite(arr) | (np.abs(arr) > MAX_WINDOW_VALUE), col, "{c} {v!r} out of range")
            if col != "residual":
                flag(arr < 0, col, "negative {c} {v!r} (a count)")
                flag(arr != np.floor(arr), col, "fractional {c} {v!r} (a count)")
        out[col] = arr
    first_line: dict[int, int] = {}
    for pos, ns in enumerate(out["window_start"].to_numpy(dtype="datetime64[ns]").astype("int64").tolist()):
        if reasons[pos] is not None:
            continue
        if ns in first_line:
            reasons[pos] = f"duplicate window_start {frame['window_start'].iat[pos]!r} (first on line {first_line[ns]})"
        else:
            first_line[ns] = lines[pos]
    return out


def read_windows(path: str | Path, *, skip_bad: bool = False, bad: BadLines | None = None) -> pd.DataFrame:
    """Read a windows CSV (header :data:`WINDOW_COLUMNS`), in ``window_start`` order whatever the file's.

    A bad row (not UTF-8, a bad time, a value that is not a finite number up to :data:`MAX_WINDOW_VALUE`, a
    negative or fractional count, a ``window_start`` seen before) raises :class:`RecordError` naming the
    file and line, or with ``skip_bad`` is counted in ``bad`` and left out.
    """
    import csv

    from .clicks_csv import _open_text, utf8_problem

    path = Path(path)
    source = str(path)
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in WINDOW_COLUMNS if c not in header]
        if missing:
            raise RecordError(f"not a windows CSV: missing column(s) {', '.join(missing)}", source=source, line=1)
        index = [header.index(c) for c in WINDOW_COLUMNS]
        rows: list[list[str]] = []
        lines: list[int] = []
        utf8: list[str | None] = []
        raws: list[str] = []
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            raw = ",".join(row)
            problem = utf8_problem(raw)
            if len(row) != len(header):
                problem = problem or f"{len(row)} fields, the header has {len(header)}"
            rows.append(["" if problem else (row[i] if i < len(row) else "") for i in index])
            lines.append(number)
            utf8.append(problem)
            raws.append(raw)
    frame = pd.DataFrame(rows, columns=list(WINDOW_COLUMNS), dtype=str)
    reasons = list(utf8)
    out = _window_row_problems(frame, lines, reasons)
    bad_rows = [i for i, r in enumerate(reasons) if r is not None]
    if bad_rows and not skip_bad:
        i = bad_rows[0]
        raise RecordError(str(reasons[i]), source=source, line=lines[i])
    for i in bad_rows:
        if bad is not None:
            bad.add(source, lines[i], str(reasons[i]), raws[i])
    keep = np.array([r is None for r in reasons], dtype=bool)
    out = out[keep].sort_values("window_start", kind="stable").reset_index(drop=True)
    for col in ("urls", "users", "clicks"):
        out[col] = out[col].astype("int64")
    return WindowSpec.of(out).attach(out)


def write_windows(windows: pd.DataFrame, path: str | Path) -> None:
    """Write windows as CSV with ISO 8601 UTC ``window_start`` (``YYYY-MM-DDTHH:MM:SSZ``)."""
    out = windows[list(WINDOW_COLUMNS)].copy()
    out["window_start"] = pd.to_datetime(out["window_start"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)


def windows_to_records(windows: pd.DataFrame, pages: PageCounts | None = None) -> list[Window]:
    """Frame rows -> :class:`~clickstream_anomaly.records.Window` records (with ``page_clicks`` from
    ``pages`` when given: ``{}`` for a window without clicks)."""
    starts = pd.to_datetime(windows["window_start"], utc=True)
    per_window = pages.of_window() if pages is not None else None
    return [
        Window(
            ts.to_pydatetime(),
            int(u),
            int(us),
            int(c),
            float(r),
            page_clicks=None if per_window is None else per_window.get(ts, {}),
        )
        for ts, u, us, c, r in zip(
            starts, windows["urls"], windows["users"], windows["clicks"], windows["residual"], strict=True
        )
    ]


def records_to_windows(records: Iterable[Window]) -> pd.DataFrame:
    """:class:`Window` records -> frame in :data:`WINDOW_COLUMNS` order."""
    rows = [r.to_dict() for r in records]
    if not rows:
        return empty_windows()
    frame = pd.DataFrame(rows)
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    return frame[list(WINDOW_COLUMNS)]


def feature_matrix(windows: pd.DataFrame, columns: Iterable[str] = FEATURE_COLUMNS) -> np.ndarray:
    """``(n_windows, n_columns)`` float64 matrix of the chosen feature columns."""
    return windows[list(columns)].to_numpy(dtype="float64")
