"""The main job: `clickstream-anomaly demo` finds both blog incidents with the right causes."""

import json

import pandas as pd
import pytest

from clickstream_anomaly.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "-o", str(out), "--quiet"]) == 0
    return out


def _overlapping(incidents, start, end):
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    return [i for i in incidents if pd.Timestamp(i["start"]) < hi and pd.Timestamp(i["end"]) > lo]


def test_demo_finds_the_user_miscount_with_a_user_or_residual_cause(demo):
    incidents = json.loads((demo / "incidents.json").read_text())
    found = _overlapping(incidents, "2020-07-15 10:10", "2020-07-15 11:20")
    assert len(found) == 1
    inc = found[0]
    # the baseline and the streaming RCF with time context (independent families) agree: confirmed
    assert inc["confirmed"] and {"baseline", "rcf-context"} <= set(inc["detectors"])
    assert "residual HIGH" in inc["cause"] or "users LOW" in inc["cause"]
    assert incidents.index(inc) < 2  # one of the two most severe


def test_demo_finds_the_outage_with_a_clicks_low_cause(demo):
    incidents = json.loads((demo / "incidents.json").read_text())
    found = _overlapping(incidents, "2020-07-15 17:30", "2020-07-15 17:40")
    assert len(found) == 1
    inc = found[0]
    # the time-aware baseline sees it: 0 clicks at 17:30 against what 17:30 usually brings
    assert "baseline" in inc["detectors"]
    assert inc["cause"].startswith("clicks LOW: 0, expected")
    assert incidents.index(inc) < 2
    low, high = (float(x) for x in inc["cause"].split("expected ")[1].split(" ")[0].split("–"))
    assert 0 < low < high  # the band never goes below zero


def test_demo_raises_few_false_incidents_on_the_other_eight_days(demo):
    incidents = json.loads((demo / "incidents.json").read_text())
    before = [i for i in incidents if pd.Timestamp(i["start"]) < pd.Timestamp("2020-07-15", tz="UTC")]
    assert not any(i["confirmed"] for i in before)
    assert len(before) <= 8


def test_demo_writes_the_report_and_metrics(demo):
    metrics = json.loads((demo / "metrics.json").read_text())["detectors"]
    assert set(metrics) == {"baseline", "baseline-pages", "rcf-context"}
    for name in ("baseline", "rcf-context"):
        assert metrics[name]["recall"] >= 6 / 8 and metrics[name]["roc_auc"] > 0.99
    html = (demo / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    assert (demo / "forecast.png").exists() and (demo / "attribution.png").exists()
