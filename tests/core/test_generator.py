"""Synthetic clickstream: determinism, daily pattern, incident placement and labels."""

import pandas as pd
import pytest

from clickstream_anomaly.features import windows_from_frame
from clickstream_anomaly.generator import (
    MISCOUNT_USER,
    STORM_PAGE,
    Incident,
    Scenario,
    generate,
    labels_for,
    parse_incident,
)


@pytest.fixture(scope="module")
def blog():
    clicks, labels = generate(Scenario())
    return clicks, labels, windows_from_frame(clicks, start="2020-07-07", end="2020-07-15 23:50")


def test_same_seed_same_data_other_seed_other_data():
    small = dict(days=1, start="2020-07-15")
    a, _ = generate(Scenario(seed=3, **small))
    b, _ = generate(Scenario(seed=3, **small))
    c, _ = generate(Scenario(seed=4, **small))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_blog_scenario_shape(blog):
    clicks, labels, windows = blog
    assert clicks["timestamp"].min() >= pd.Timestamp("2020-07-07", tz="UTC")
    assert clicks["timestamp"].max() < pd.Timestamp("2020-07-16", tz="UTC")
    assert clicks["timestamp"].is_monotonic_increasing
    assert len(windows) == len(labels) == 9 * 144
    hourly = windows.groupby(windows["window_start"].dt.hour)["clicks"].mean()
    assert hourly.loc[14:16].mean() > 5 * hourly.loc[1:4].mean()  # busy afternoons, quiet nights
    visits = clicks.groupby("user").size()
    assert visits.median() > 1  # returning visitors clicking several pages


def test_blog_incidents_are_where_the_blog_puts_them(blog):
    _, labels, windows = blog
    w = windows.set_index("window_start")
    miscount = w.loc["2020-07-15 10:10":"2020-07-15 11:10"]
    assert (miscount["users"] == 1).all() and (miscount["clicks"] > 5).all()
    assert w.loc["2020-07-15 10:00", "users"] > 1 and w.loc["2020-07-15 11:20", "users"] > 1
    assert w.loc["2020-07-15 17:30", "clicks"] == 0
    assert w.loc["2020-07-15 17:20", "clicks"] > 0 and w.loc["2020-07-15 17:40", "clicks"] > 0
    anomalous = labels[labels["is_anomaly"] == 1]
    assert anomalous["incident"].value_counts().to_dict() == {"user-miscount": 7, "outage": 1}
    assert anomalous["window_start"].min() == pd.Timestamp("2020-07-15 10:10", tz="UTC")


def test_injected_bot_flood_and_page_storm():
    incidents = (
        parse_incident("bot-flood@2020-07-07T14:00+20min"),
        parse_incident("page-storm@2020-07-07T16:00+10min"),
    )
    clicks, labels = generate(Scenario(days=1, incidents=incidents))
    w = windows_from_frame(clicks).set_index("window_start")
    per_user = w["clicks"] / w["users"]
    assert per_user.loc["2020-07-07 14:00"] > 3 * per_user.loc["2020-07-07 13:40"]
    assert w.loc["2020-07-07 14:00", "residual"] > 300
    storm = clicks[(clicks["page"] == STORM_PAGE)]
    assert storm["timestamp"].min() >= pd.Timestamp("2020-07-07 16:00", tz="UTC")
    assert w.loc["2020-07-07 16:00", "users"] > 3 * w.loc["2020-07-07 15:40", "users"]
    assert labels.loc[labels["is_anomaly"] == 1, "incident"].tolist() == ["bot-flood"] * 2 + ["page-storm"]
    assert MISCOUNT_USER not in set(clicks["user"])


def test_labels_mark_overlapping_windows():
    inc = Incident("outage", pd.Timestamp("2020-07-07 00:05", tz="UTC"), pd.Timedelta("10min"))
    labels = labels_for("2020-07-07", 1, [inc])
    assert labels["is_anomaly"].iloc[:3].tolist() == [1, 1, 0]


@pytest.mark.parametrize(
    "spec", ["outage", "meteor@2020-07-07T00:00+5min", "outage@2020-07-07+0min", "outage@notatime+5min"]
)
def test_bad_incident_specs(spec):
    with pytest.raises(ValueError):
        parse_incident(spec)
