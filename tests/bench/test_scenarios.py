"""The backtest scenario generator (bench/scenario_gen.py) and the bench's scoring (bench/scenarios.py) on
small, low-traffic scenarios."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from scenario_gen import (  # noqa: E402
    BANDS,
    DEFAULT_MIX,
    KINDS,
    Injected,
    _schedule,
    draw_site,
    generate_scenario,
    mix_for_days,
    write_scenario,
)
from scenarios import Reported, cause_matches, main, parse_sets, score_scenario  # noqa: E402

from clickstream_anomaly.features import windows_from_frame  # noqa: E402

SEED, LEVEL = 5, 3.0
MIN = pd.Timedelta(minutes=1)


@pytest.fixture(scope="module")
def clean():
    return generate_scenario(SEED, LEVEL, days=2, clean=True)


def _windows(sc):
    return windows_from_frame(sc.clicks, start=sc.start, end=sc.end - 10 * MIN).set_index("window_start")


def test_deterministic_and_seed_dependent(clean):
    again = generate_scenario(SEED, LEVEL, days=2, clean=True)
    pd.testing.assert_frame_equal(clean.clicks, again.clicks)
    other = generate_scenario(SEED + 1, LEVEL, days=2, clean=True)
    assert len(other.clicks) != len(clean.clicks) or not other.clicks.equals(clean.clicks)


def test_clicks_shape_and_daily_rhythm(clean):
    c = clean.clicks
    assert list(c.columns) == ["timestamp", "user", "page"]
    ts = c["timestamp"]
    assert ts.is_monotonic_increasing
    assert ts.min() >= clean.start and ts.max() < clean.end
    assert (ts.dt.microsecond == 0).all() and (ts.dt.nanosecond == 0).all()
    assert c["user"].str.len().min() > 0 and c["page"].str.startswith("/").all()
    # A few thousand clicks a day at 3 visits/min; multi-click visits; returning users.
    assert 3_000 < len(c) / 2 < 20_000
    assert len(c) / c["user"].nunique() > 1.5
    assert c["user"].value_counts().iloc[0] >= 5
    # Nights are quiet, afternoons busy (local time).
    local_hour = ts.dt.tz_convert(clean.tz).dt.hour
    night = (local_hour.between(2, 5)).sum() / 4
    afternoon = (local_hour.between(13, 16)).sum() / 4
    assert 0.05 < night / afternoon < 0.4


def test_site_parameters_in_range():
    for seed in range(20):
        s = draw_site(seed)
        assert 0.10 <= s.night_min <= 0.20
        assert s.weekday_level[5] < 0.9 and s.weekday_level[6] < 1.0
        assert 30 <= s.n_pages <= 600


def test_default_schedule_spread_and_never_in_first_day():
    for seed in range(4):
        site = draw_site(seed)
        start = pd.Timestamp(site.start_date).tz_localize(site.tz)
        incs = _schedule(np.random.default_rng(seed), start, 10, mix_for_days(10))
        assert sorted(i.kind for i in incs) == sorted(k for k, n in DEFAULT_MIX.items() for _ in range(n))
        assert all(i.start >= start + pd.Timedelta(days=1) for i in incs)
        assert all(a.end + pd.Timedelta("2h") < b.start for a, b in itertools.pairwise(incs))
        outages = [i for i in incs if i.kind == "full-outage"]
        assert {i.band for i in outages} == set(BANDS)
        for i in incs:
            lo, hi = BANDS[i.band]
            hour = i.start.tz_convert(site.tz)
            assert lo <= hour.hour + hour.minute / 60 < hi
            assert i.start <= i.visible < i.end
    assert sorted(mix_for_days(4)) == sorted(KINDS)


def test_each_kind_changes_the_windows(clean):
    day1 = clean.start + pd.Timedelta(days=1)
    incs = [
        Injected("full-outage", day1 + 60 * MIN, day1 + 100 * MIN, day1 + 60 * MIN, detail={"retry_share": 0.0}),
        Injected(
            "tracking-loss",
            day1 + 14 * 60 * MIN,
            day1 + 15 * 60 * MIN,
            day1 + 14 * 60 * MIN,
            detail={"share": 1.0, "placeholder": "undefined"},
        ),
        Injected(
            "bot-flood",
            day1 + 17 * 60 * MIN,
            day1 + 17 * 60 * MIN + 40 * MIN,
            day1 + 17 * 60 * MIN,
            detail={"factor": 1.5, "interval_s": 3.0, "mode": "crawl"},
        ),
        Injected(
            "page-storm",
            day1 + 20 * 60 * MIN,
            day1 + 20 * 60 * MIN + 30 * MIN,
            day1 + 20 * 60 * MIN,
            detail={"factor": 2.0, "rise_minutes": 2.0, "new_page": True},
        ),
        Injected(
            "broken-page",
            day1 + 8 * 60 * MIN,
            day1 + 10 * 60 * MIN,
            day1 + 8 * 60 * MIN,
            detail={"rank": 0, "leave_share": 0.5},
        ),
    ]
    sc = generate_scenario(SEED, LEVEL, days=2, incidents=incs)
    w = _windows(sc)
    c = sc.clicks
    t = c["timestamp"]

    def inside(inc):
        return (t >= inc.start) & (t < inc.end)

    by_kind = {i.kind: i for i in sc.incidents}
    out, lost, bots, storm, broken = (by_kind[i.kind] for i in incs)
    assert not inside(out).any()
    assert (c.loc[inside(lost), "user"] == "undefined").all()
    full = w.loc[lost.start.ceil("10min") : lost.end - 10 * MIN]
    assert (full["users"] == 1).all() and (full["clicks"] > 5).all()
    top = c.loc[inside(bots), "user"].value_counts()
    assert top.iloc[0] > 150  # a bot clicks every few seconds for 40 minutes
    hits = c.loc[inside(storm), "page"] == storm.detail["page"]
    assert hits.sum() > 50 and c.loc[inside(storm)][hits.to_numpy()]["user"].is_unique
    assert not (c.loc[inside(broken), "page"] == broken.detail["page"]).any()
    assert (c["page"] == broken.detail["page"]).sum() > 100  # a popular page outside the incident


def test_ramp_doubles_traffic(clean):
    day1 = clean.start + pd.Timedelta(days=1)
    start = day1 + 9 * 60 * MIN
    ramp = Injected(
        "slow-ramp",
        start,
        start + 6 * 60 * MIN,
        start + 45 * MIN,
        detail={"peak": 2.0, "mode": "stay", "rise_minutes": 180.0, "hold_minutes": 150.0, "back_minutes": 30.0},
    )
    sc = generate_scenario(SEED, LEVEL, days=2, incidents=[ramp])
    plateau = (sc.clicks["timestamp"] >= start + 180 * MIN) & (sc.clicks["timestamp"] < start + 330 * MIN)
    same = (clean.clicks["timestamp"] >= start + 180 * MIN) & (clean.clicks["timestamp"] < start + 330 * MIN)
    assert 1.5 < plateau.sum() / same.sum() < 2.7


def test_scoring_found_delay_cause_false(clean):
    day1 = clean.start + pd.Timedelta(days=1)
    out = Injected("full-outage", day1 + 65 * MIN, day1 + 95 * MIN, day1 + 65 * MIN)
    sc = generate_scenario(SEED, LEVEL, days=2, clean=True)
    sc.incidents = [out]
    w = [day1 + 60 * MIN, day1 + 70 * MIN]
    good = Reported(2, w[0], w[1] + 10 * MIN, w, "clicks LOW: 0, expected 20–40 (x)", True, 3.0, ["x", "y"])
    late = Reported(3, day1 + 120 * MIN, day1 + 130 * MIN, [day1 + 120 * MIN], "users HIGH (x)", False, 1.0, ["x"])
    far = Reported(1, day1 + 600 * MIN, day1 + 610 * MIN, [day1 + 600 * MIN], "urls LOW (x)", False, 2.0, ["x"])
    early = Reported(4, clean.start + 60 * MIN, clean.start + 70 * MIN, [clean.start + 60 * MIN], "", False, 1.0, ["x"])
    res = score_scenario(sc, [far, good, late, early], pd.Timedelta("30min"))
    (row,) = res["incidents"]
    assert row["found"] and row["rank"] == 2 and row["confirmed"] and row["cause_ok"] and row["cause_consistent"]
    assert row["delay_minutes"] == -5.0 and row["alert_delay_minutes"] == 5.0 and row["matches"] == 2
    assert [f["rank"] for f in res["false_incidents"]] == [1]  # the first day is not scored
    assert res["scored_days"] == pytest.approx(1.0, abs=0.05)
    missed = score_scenario(sc, [far], pd.Timedelta("30min"))["incidents"][0]
    assert not missed["found"] and missed["delay_minutes"] is None


def test_cause_matching_and_detector_sets():
    assert cause_matches("users LOW, residual HIGH (rcf-streaming)", [("users", "LOW")])
    assert not cause_matches("users HIGH (rcf-batch)", [("users", "LOW")])
    assert cause_matches("clicks LOW: 0, expected 95–160 (deepar)", [("clicks", "LOW")])
    assert parse_sets(["rcf-streaming,rcf-batch;rcf-streaming", "rcf-batch"]) == [
        ["rcf-streaming", "rcf-batch"],
        ["rcf-streaming"],
        ["rcf-batch"],
    ]
    assert parse_sets(["default"])[0]  # whatever the CLI's default is


def test_write_scenario_and_bench_smoke(tmp_path):
    sc = generate_scenario(SEED, LEVEL, days=2)
    folder = write_scenario(sc, tmp_path / "s")
    back = pd.read_csv(folder / "clicks.csv")
    assert list(back.columns) == ["timestamp", "user", "page"] and len(back) == len(sc.clicks)
    assert back["timestamp"].iloc[0].endswith("Z")
    meta = json.loads((folder / "incidents.json").read_text())
    assert [i["kind"] for i in meta["incidents"]] == [i.kind for i in sc.incidents]
    out = tmp_path / "r.json"
    assert main(["--quick", "--days", "2", "--levels", "3", "--detectors", "rcf-batch", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    summary = payload["runs"]["rcf-batch"]["summary"]
    assert summary["injected"] == 2 and "false_clean" in summary
