"""The per-page detector and the clicks per page: counts equal a direct count, a broken popular page is
found with the page in the cause, quiet pages and missing page counts give no verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.detectors import DEFAULT_DETECTORS, PageBaselineDetector, build_detectors
from clickstream_anomaly.features import PageCounts, windows_from_frame
from clickstream_anomaly.records import PAGES, PAGES_PER_WINDOW
from clickstream_anomaly.workflow import run_detection

from .test_baseline import DAY, rhythm

SHARES = {"/": 0.4, "/search": 0.25, "/cart": 0.15, "/help": 0.12, "/about": 0.05, "/rare": 0.015}


def clicks(
    days: int = 5, peak: float = 60.0, seed: int = 0, broken: tuple[str, int, int] | None = None
) -> pd.DataFrame:
    """Poisson clicks per minute with a daily rhythm, spread over pages by :data:`SHARES`; ``broken`` =
    (page, first minute, minutes) that page gets no click."""
    rng = np.random.default_rng(seed)
    minutes = pd.date_range("2024-01-01", periods=days * 1440, freq="1min", tz="UTC")
    hours = minutes.hour.to_numpy() + minutes.minute.to_numpy() / 60
    n = rng.poisson(peak * rhythm(hours, minutes.day_of_week.to_numpy()))
    base = minutes.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    ts = np.repeat(base, n) + rng.integers(0, 60, n.sum()).astype("timedelta64[s]")
    pages = rng.choice(list(SHARES), size=n.sum(), p=np.array(list(SHARES.values())) / sum(SHARES.values()))
    frame = pd.DataFrame(
        {"timestamp": pd.to_datetime(ts, utc=True), "user": rng.integers(0, 5000, n.sum()).astype(str)}
    )
    frame["page"] = pages
    if broken is not None:
        page, first, length = broken
        lo, hi = minutes[first], minutes[first + length]
        frame = frame[~((frame["page"] == page) & (frame["timestamp"] >= lo) & (frame["timestamp"] < hi))]
    return frame.sort_values("timestamp", ignore_index=True)


def test_clicks_per_page_equal_a_direct_count_and_leave_the_windows_unchanged():
    data = clicks(days=2)
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    pd.testing.assert_frame_equal(windows, windows_from_frame(data))
    direct = data.groupby([data["timestamp"].dt.floor("10min"), "page"]).size()
    got = counts.frame.set_index(["window_start", "page"])["clicks"]
    assert got.sort_index().to_dict() == direct.sort_index().to_dict()
    wide = counts.wide(windows["window_start"], ["/", "/nowhere"])
    assert list(wide.columns) == ["/", "/nowhere"] and (wide["/nowhere"] == 0).all()
    assert (wide.sum(axis=1) <= windows["clicks"].to_numpy()).all()
    sampled = PageCounts()
    windows_from_frame(data, pages=sampled, sampling_rate=10)
    assert (sampled.frame["clicks"] == counts.frame["clicks"] * 10).all()


def test_every_url_distinct_keeps_memory_bounded_and_the_popular_page_modelled():
    data = clicks(days=2, seed=3)
    unique = data["page"] != "/"
    data.loc[unique, "page"] = [f"/item?id={i}" for i in range(int(unique.sum()))]
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    per_window = counts.frame.groupby("window_start").size()
    assert per_window.max() == PAGES_PER_WINDOW < (data.groupby(data["timestamp"].dt.floor("10min")).size()).max()
    home = counts.frame[counts.frame["page"] == "/"].set_index("window_start")["clicks"]
    assert home.to_dict() == data[~unique].groupby(data["timestamp"].dt.floor("10min")).size().to_dict()
    det = PageBaselineDetector(pages=counts)
    det.detect(windows)
    assert det.pages_ == ["/"]


def test_a_broken_popular_page_is_found_with_the_page_in_the_cause():
    start = 3 * 1440 + 14 * 60  # day 4, 14:00 UTC: 90 minutes without a click on /search
    data = clicks(broken=("/search", start, 90))
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    result = run_detection(windows, build_detectors([PAGES], baseline_pages={"pages": counts}))
    flagged = [d for d in result.detections if d.is_anomaly]
    outage = pd.Timestamp("2024-01-04 14:00", tz="UTC")
    assert flagged and all(outage <= d.window.window_start < outage + pd.Timedelta("90min") for d in flagged)
    assert {d.extra["page"] for d in flagged} == {"/search"}
    assert flagged[0].window.window_start <= outage + pd.Timedelta("20min")
    incident = result.incidents[0]
    assert incident.cause.startswith("clicks LOW on page /search: 0, expected ")
    det = flagged[0]
    assert det.expected["page:/search"] > det.high["page:/search"] * 0.5 > 0


def test_normal_traffic_raises_nothing_and_only_popular_pages_are_modelled():
    counts = PageCounts()
    windows = windows_from_frame(clicks(seed=1), pages=counts)
    det = PageBaselineDetector(pages=counts)
    dets = det.detect(windows)
    assert not any(d.is_anomaly for d in dets)
    assert set(det.pages_) == {"/", "/search", "/cart", "/help", "/about"}  # /rare: under 3 % of the clicks
    assert all(d.warmup for d in dets[:DAY]) and not any(d.warmup for d in dets[DAY + 1 :])


def test_without_clicks_per_page_there_is_no_verdict_and_the_default_set_includes_it():
    windows = windows_from_frame(clicks(days=2))
    det = PageBaselineDetector()
    dets = det.detect(windows)
    assert len(dets) == len(windows) and all(d.warmup and not d.is_anomaly for d in dets)
    assert "windows file" in det.note
    assert PAGES in DEFAULT_DETECTORS


def test_history_is_learned_first_and_bad_settings_are_refused():
    data = clicks(broken=("/", 3 * 1440 + 600, 60))
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    whole = PageBaselineDetector(pages=counts).detect(windows)
    split = PageBaselineDetector(pages=counts).fit(windows.iloc[: 2 * DAY]).detect(windows.iloc[2 * DAY :])
    assert [d.to_row() for d in split] == [d.to_row() for d in whole[2 * DAY :]]
    assert any(d.is_anomaly for d in split)
    for bad in ({"min_share": 0}, {"max_pages": 0}, {"directions": ("DOWN",)}):
        with pytest.raises(ValueError):
            PageBaselineDetector(**bad)
