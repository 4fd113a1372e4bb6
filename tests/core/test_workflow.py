"""detect end to end on a small scenario: outputs, report figures, CLI errors; the demo finds both incidents."""

import json

import pandas as pd
import pytest

from clickstream_anomaly.cli import main
from clickstream_anomaly.clicks_csv import write_clicks
from clickstream_anomaly.generator import Scenario, generate, write_labels


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    clicks, labels = generate(Scenario(days=3, start="2020-07-13"))
    write_clicks(clicks, d / "clicks.csv")
    write_labels(labels, d / "labels.csv")
    return d


def test_detect_writes_every_output_and_figure(small, capsys):
    out = small / "out"
    rc = main(
        [
            "detect",
            str(small / "clicks.csv"),
            "-o",
            str(out),
            "--labels",
            str(small / "labels.csv"),
            "--detectors",
            "rcf-streaming,rcf-batch",
            "--quiet",
        ]
    )
    assert rc == 0
    dets = pd.read_csv(out / "detections.csv")
    assert set(dets["detector"]) == {"rcf-streaming", "rcf-batch"}
    assert len(dets) == 2 * 3 * 144
    assert dets.loc[dets["detector"] == "rcf-streaming", "explanation"].dropna().str.contains("DIRECTION").any()
    incidents = json.loads((out / "incidents.json").read_text())
    assert incidents and {"start", "end", "cause", "detectors", "confirmed"} <= set(incidents[0])
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"rcf-streaming", "rcf-batch"} <= set(metrics["detectors"])
    html = (out / "report.html").read_text()
    for fig in ("scores_rcf-batch", "scores_rcf-streaming", "features", "attribution", "precision_recall"):
        assert (out / f"{fig}.png").stat().st_size > 1000
        assert f'alt="{fig}"' in html
    assert html.count("data:image/png;base64,") == 5
    assert capsys.readouterr().out == ""


def test_detect_on_windows_csv_and_bad_inputs(small, tmp_path, capsys):
    assert main(["features", str(small / "clicks.csv"), "-o", str(tmp_path / "w.csv"), "--quiet"]) == 0
    assert (
        main(
            [
                "detect",
                str(tmp_path / "w.csv"),
                "-o",
                str(tmp_path / "o"),
                "--detectors",
                "rcf-batch",
                "--threshold",
                "value:1.5",
                "--no-report",
                "--quiet",
            ]
        )
        == 0
    )
    dets = pd.read_csv(tmp_path / "o" / "detections.csv")
    assert (dets["threshold"] == 1.5).all() and not (tmp_path / "o" / "report.html").exists()
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert main(["detect", str(tmp_path / "x.csv"), "-o", str(tmp_path / "o")]) == 2
    assert "neither a clicks CSV" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "w.csv"), "-o", str(tmp_path / "o"), "--threshold", "f1"]) == 2
    assert "needs --labels" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "w.csv"), "-o", str(tmp_path / "o"), "--detectors", "magic"]) == 2


def test_detect_with_hourly_windows_runs_every_detector(tmp_path):
    """``--freq 1h``: every detector takes the window length from the windows (no 10-minute assumption)."""
    import json

    from clickstream_anomaly.cli import main as cli
    from clickstream_anomaly.windowspec import WindowSpec

    assert cli(["generate", "-o", str(tmp_path), "--days", "3", "--volume", "0.5", "--no-blog-incidents"]) == 0
    out = tmp_path / "out"
    args = ["detect", str(tmp_path / "clicks.csv"), "-o", str(out), "--freq", "1h", "--quiet", "--no-report"]
    assert cli([*args, "--detectors", "baseline,rcf-context,rcf-streaming,rcf-batch"]) == 0
    dets = pd.read_csv(out / "detections.csv")
    assert set(dets["detector"]) == {"baseline", "rcf-context", "rcf-streaming", "rcf-batch"}
    base = dets[dets["detector"] == "baseline"]
    assert len(base) == 72 and WindowSpec.of(base).freq == "1h"
    assert base["warmup"].head(24).all() and not base["warmup"].tail(48).any()  # one day of hourly windows
    assert isinstance(json.loads((out / "incidents.json").read_text()), list)


def test_detect_reads_the_features_streams_window_records_with_their_page_counts(small, tmp_path, capsys):
    """The windows the engines send (JSON Lines, as the data lake keeps them; gzip; a re-delivered window
    twice) give `detect` the same detections as the click log, baseline-pages included."""
    import gzip

    from clickstream_anomaly.features import PageCounts, compute_windows, windows_to_records

    pages = PageCounts()
    records = windows_to_records(compute_windows(small / "clicks.csv", pages=pages), pages)
    lines = [w.to_json() for w in records]
    lines.insert(100, lines[99])  # a re-delivery: the same window again
    path = tmp_path / "features.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    for source, out in ((small / "clicks.csv", tmp_path / "from-clicks"), (path, tmp_path / "from-records")):
        args = ["detect", str(source), "-o", str(out), "--detectors", "baseline,baseline-pages", "--quiet"]
        assert main(args) == 0
    from_clicks = (tmp_path / "from-clicks" / "detections.csv").read_text()
    assert (tmp_path / "from-records" / "detections.csv").read_text() == from_clicks
    dets = pd.read_csv(tmp_path / "from-records" / "detections.csv")
    assert (~dets[dets.detector == "baseline-pages"]["warmup"]).sum() > 144  # judged: the page counts came along
    lines[5] = lines[5].replace('"clicks":', '"clicks":0.5,"x":')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    assert main(["detect", str(bad), "-o", str(tmp_path / "o"), "--quiet"]) == 2
    assert "bad.jsonl:6" in capsys.readouterr().err


def test_detect_rules_change_the_verdicts_and_bad_ones_are_refused(tmp_path, capsys):
    """``--rule``: a storm on a quiet page is flagged by the per-page detector with its defaults and not with
    ``baseline-pages.surge_z=inf``; stricter baseline rules change the baseline's scores, not the pages'."""
    from tests.core.test_pages import clicks, storm

    write_clicks(storm(clicks(seed=2), "/rare", "2024-01-04 15:02", 20, 10.0), tmp_path / "c.csv")
    base = ["detect", str(tmp_path / "c.csv"), "--detectors", "baseline,baseline-pages", "--no-report", "--quiet"]

    def pages_flagged(out: str, *rules: str) -> int:
        assert main([*base, "-o", str(tmp_path / out), *rules]) == 0
        dets = pd.read_csv(tmp_path / out / "detections.csv")
        return int(dets[dets["detector"] == "baseline-pages"]["is_anomaly"].sum())

    assert pages_flagged("default") > 0
    assert pages_flagged("off", "--rule", "baseline-pages.surge_z=inf") == 0
    assert pages_flagged("strict", "--rule", "baseline.point_threshold=9", "--rule", "baseline.run_window=1h") > 0
    strict, default = (pd.read_csv(tmp_path / out / "detections.csv") for out in ("strict", "default"))
    strict, default = (d[d["detector"] == "baseline"] for d in (strict, default))
    assert len(strict) == len(default) and (strict["score"].to_numpy() != default["score"].to_numpy()).any()
    assert strict["is_anomaly"].sum() <= default["is_anomaly"].sum()
    assert main([*base, "-o", str(tmp_path / "bad"), "--rule", "baseline.huber=2"]) == 2
    assert "--rule: baseline has no rule huber" in capsys.readouterr().err
