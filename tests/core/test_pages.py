"""The per-page detector and the clicks per page: counts equal a direct count, a broken popular page is
found with the page in the cause, quiet pages and missing page counts give no verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.detectors import DEFAULT_DETECTORS, PageBaselineDetector, build_detectors
from clickstream_anomaly.features import PageCounts, windows_from_frame, windows_to_records
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
    assert "windows CSV" in det.note
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


def stream(records, settings, cut: int | None = None):
    """The streaming state over ``records`` one window at a time, saved and restored at ``cut``."""
    from clickstream_anomaly.baseline.pages import PageStream

    state, out = PageStream(settings), []
    for i, w in enumerate(records):
        if i == cut:
            state = PageStream.from_bytes(state.to_bytes())
        out.append(state.step(w))
    return out, state


def test_streaming_one_window_at_a_time_equals_the_batch_bit_for_bit():
    data = clicks(broken=("/search", 3 * 1440 + 14 * 60, 90), seed=4)
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    det = PageBaselineDetector(pages=counts)
    batch = det.detect(windows)
    got, state = stream(windows_to_records(windows, counts), det.settings("10min"), cut=2 * DAY + 7)
    assert [d.to_json() for d in got] == [d.to_json() for d in batch]
    assert any(d.is_anomaly for d in got) and list(state.models) == det.pages_
    assert len(state.to_bytes()) < 50_000 * len(state.models)


def test_a_page_that_stops_being_popular_gives_its_model_to_a_new_one_in_both_engines():
    data = clicks(days=6, seed=5)
    late = data["timestamp"] >= pd.Timestamp("2024-01-04", tz="UTC")
    data.loc[late & (data["page"] == "/help"), "page"] = "/new"  # /help renamed on day 4
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    det = PageBaselineDetector(pages=counts, max_pages=5)  # the five popular pages fill every slot
    batch = det.detect(windows)
    got, state = stream(windows_to_records(windows, counts), det.settings("10min"), cut=4 * DAY + 3)
    assert [d.to_json() for d in got] == [d.to_json() for d in batch]
    assert "/new" in state.models and "/help" not in state.models and len(state.models) == 5
    flagged = [d for d in got if d.is_anomaly]  # /help gone at the rename (it looks like a broken page) ...
    assert flagged and {d.extra["page"] for d in flagged} == {"/help"}
    assert all(d.window.window_start < pd.Timestamp("2024-01-04 03:00", tz="UTC") for d in flagged)
    # ... and /new, learned from its first click (not from the zeros before it existed), raises nothing


def test_windows_without_page_counts_teach_nothing_and_get_no_verdict():
    from clickstream_anomaly.records import Window

    counts = PageCounts()
    records = windows_to_records(windows_from_frame(clicks(days=3, seed=6), pages=counts), counts)
    settings = PageBaselineDetector().settings("10min")
    unknown = [Window(w.window_start, w.urls, w.users, w.clicks, w.residual) for w in records[2 * DAY : 2 * DAY + 6]]
    with_gap, _ = stream(records[: 2 * DAY] + unknown + records[2 * DAY + 6 :], settings)
    assert all(d.warmup and not d.is_anomaly for d in with_gap[2 * DAY : 2 * DAY + 6])
    assert not any(d.is_anomaly for d in with_gap)


def test_a_burst_on_a_page_before_its_model_exists_does_not_become_its_daily_normal():
    """A bot flood on /cart on day 1 (20x its clicks for 90 min) is in the day a new model first learns:
    cleaned out, so the next days at that hour are not "clicks LOW on page /cart" (they were, each day)."""
    data = clicks(days=5, seed=7)
    lo, hi = pd.Timestamp("2024-01-01 03:00", tz="UTC"), pd.Timestamp("2024-01-01 04:30", tz="UTC")
    cart = data[(data["page"] == "/cart") & (data["timestamp"] >= lo) & (data["timestamp"] < hi)]
    flood = pd.concat([cart] * 20, ignore_index=True)
    flood["user"] = [f"bot{i % 30}" for i in range(len(flood))]
    data = pd.concat([data, flood]).sort_values("timestamp", ignore_index=True)
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    det = PageBaselineDetector(pages=counts)
    dets = det.detect(windows)
    assert "/cart" in det.pages_
    assert not [d.window.window_start for d in dets if d.is_anomaly]


def test_page_counts_survive_many_small_chunks_before_any_window_is_finished():
    """Three chunks before a window finishes (a big log read in chunks) used to raise a pandas error."""
    from clickstream_anomaly.features import WindowAccumulator

    acc = WindowAccumulator(lateness="10min", pages=PageCounts())
    t0 = pd.Timestamp("2024-01-01", tz="UTC").value
    for minute, page in ((1, "/"), (3, "/a"), (4, "/"), (31, "/a")):
        acc.add(pd.DataFrame({"ts": [t0 + minute * 60_000_000_000], "user": ["u"], "page": [page]}))
    acc.result()
    assert acc.pages is not None
    got = acc.pages.frame.set_index(["window_start", "page"])["clicks"].to_dict()
    first, later = pd.Timestamp(t0, tz="UTC"), pd.Timestamp(t0, tz="UTC") + pd.Timedelta("30min")
    assert got == {(first, "/"): 2, (first, "/a"): 1, (later, "/a"): 1}


def storm(data: pd.DataFrame, page: str, at: str, minutes: int, per_minute: float, seed: int = 0) -> pd.DataFrame:
    """``data`` with a page storm: one-click visitors (new users) on ``page`` for ``minutes`` from ``at``."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(at, tz="UTC")
    n = rng.poisson(per_minute * minutes)
    ts = start + pd.to_timedelta(rng.uniform(0, minutes * 60, n), unit="s")
    extra = pd.DataFrame({"timestamp": ts, "user": [f"storm{i}" for i in range(n)], "page": page})
    return pd.concat([data, extra]).sort_values("timestamp", ignore_index=True)


def test_a_storm_on_a_page_that_is_not_popular_is_found_high_with_the_page_in_the_cause():
    """20 minutes of 10 one-click visitors a minute on /rare (1.5 % of the clicks) at the afternoon peak,
    where the site makes about 60 clicks a minute: the site's features see 17 % more clicks."""
    data = storm(clicks(seed=2), "/rare", "2024-01-04 15:02", 20, 10.0)
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    result = run_detection(windows, build_detectors([PAGES], baseline_pages={"pages": counts}))
    flagged = [d for d in result.detections if d.is_anomaly]
    at = pd.Timestamp("2024-01-04 15:00", tz="UTC")
    assert flagged and {d.extra["page"] for d in flagged} == {"/rare"}
    assert all(at <= d.window.window_start < at + pd.Timedelta("30min") for d in flagged)
    assert flagged[0].window.window_start == at and flagged[0].direction == {"page:/rare": "HIGH"}
    assert result.incidents[0].cause.startswith("clicks HIGH on page /rare: ")
    assert flagged[0].high["page:/rare"] < 30 < flagged[0].extra["page_clicks"]
    off = PageBaselineDetector(pages=counts, surge_z=np.inf).detect(windows)
    assert not any(d.is_anomaly for d in off)
    got, _ = stream(windows_to_records(windows, counts), PageBaselineDetector().settings("10min"), cut=3 * DAY + 90)
    assert [d.to_json() for d in got] == [d.to_json() for d in PageBaselineDetector(pages=counts).detect(windows)]


def test_a_new_page_that_keeps_its_traffic_stops_surging_within_the_hour():
    """A new page /launch that takes 15 % of the clicks from day 3 on (and keeps them): flagged at its
    start, then its last hour is its normal; it becomes popular and modelled later."""
    data = clicks(days=5, seed=8)
    late = data["timestamp"] >= pd.Timestamp("2024-01-03 10:00", tz="UTC")
    move = late & (np.random.default_rng(1).random(len(data)) < 0.15)
    data.loc[move, "page"] = "/launch"
    counts = PageCounts()
    windows = windows_from_frame(data, pages=counts)
    det = PageBaselineDetector(pages=counts)
    flagged = [d for d in det.detect(windows) if d.is_anomaly]
    start = pd.Timestamp("2024-01-03 10:00", tz="UTC")
    assert flagged and all(d.extra["page"] == "/launch" for d in flagged)
    assert all(start <= d.window.window_start < start + pd.Timedelta("30min") for d in flagged)
    assert "/launch" in det.pages_


@pytest.mark.parametrize("bad", [{"surge_share": 0}, {"surge_share": 1.5}, {"surge_z": 0}])
def test_bad_surge_settings_are_refused(bad):
    with pytest.raises(ValueError, match="surge_share must be in"):
        PageBaselineDetector(**bad)
