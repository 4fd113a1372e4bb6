"""``clickstream-anomaly replay``: a click log through the Lambda engine (handlers against a local moto server)
and the Flink engine (the job on a local mini-cluster), against the batch ``features`` and baseline."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from clickstream_anomaly.aws.lambda_engine import LambdaEngineSettings, run_lambda_engine
from clickstream_anomaly.cli import main
from clickstream_anomaly.clicks_csv import write_clicks
from clickstream_anomaly.features import read_windows
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.records import Click, write_detections_csv
from clickstream_anomaly.sources import iter_clicks
from tests.conftest import engine_reference_detections

ROOT = Path(__file__).resolve().parents[2]
FLINK_PYTHON = Path(os.environ.get("FLINK_PYTHON", ROOT / ".venv-flink" / "bin" / "python"))


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """Two days of clicks with a 90-minute outage on day 2 (so day 2 is judged and the outage flagged)."""
    clicks, _ = generate(Scenario(start="2020-07-13 00:00", days=2, volume=0.3, seed=4))
    ts = pd.to_datetime(clicks["timestamp"], utc=True)
    outage = (ts >= pd.Timestamp("2020-07-14 13:00Z")) & (ts < pd.Timestamp("2020-07-14 14:30Z"))
    path = tmp_path_factory.mktemp("log") / "clicks.csv"
    write_clicks(clicks[~outage.to_numpy()], path)
    return path


@pytest.fixture(scope="module")
def lambda_out(log, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lambda")
    assert main(["replay", str(log), "-o", str(out), "--engine", "lambda", "--quiet"]) == 0
    return out


def batch_detections(log: Path) -> str:
    text = io.StringIO()
    write_detections_csv(engine_reference_detections(log), text)
    return text.getvalue()


def test_lambda_replay_windows_equal_features(log, lambda_out, tmp_path):
    assert main(["features", str(log), "-o", str(tmp_path / "f.csv"), "--quiet"]) == 0
    assert (lambda_out / "windows.csv").read_bytes() == (tmp_path / "f.csv").read_bytes()
    windows = read_windows(lambda_out / "windows.csv")
    assert (windows["clicks"] == 0).sum() == 9  # the outage's windows came out of the stream


def test_lambda_replay_detections_equal_the_batch_baseline(log, lambda_out):
    assert (lambda_out / "detections.csv").read_text(encoding="utf-8") == batch_detections(log)
    judged = pd.read_csv(lambda_out / "detections.csv")
    judged = judged[judged.detector == "baseline"]
    outage = judged[(judged.window_start >= "2020-07-14T13:00") & (judged.window_start < "2020-07-14T14:30")]
    assert outage["is_anomaly"].all()


def test_lambda_replay_accounts_for_every_click(log, lambda_out):
    summary = json.loads((lambda_out / "summary.json").read_text())
    n = len(pd.read_csv(log))
    assert summary["clicks"] == summary["clicks_in_windows"] == n
    assert summary["clicks_not_in_windows"] == summary["event_time_rejected"] == summary["failed_batches"] == 0
    assert summary["records_sent"] < n  # the producer aggregated a user's clicks, as deployed
    assert summary["invocations"]["aggregator"] >= summary["records_sent"] / 500


def test_lambda_engine_with_one_and_many_shards_gives_the_same_windows(log):
    clicks = list(iter_clicks(log))[:3000]
    one = run_lambda_engine(clicks, LambdaEngineSettings(shards=1, detectors=("baseline",)))
    many = run_lambda_engine(clicks, LambdaEngineSettings(shards=8, detectors=("baseline",)))
    assert one.windows == many.windows and len(one.windows) > 10
    assert one.detections == many.detections


def test_lambda_engine_only_talks_to_loopback():
    click = Click(pd.Timestamp("2020-07-13T00:00Z").to_pydatetime(), "u", "/")
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        run_lambda_engine([click], endpoint="https://kinesis.us-east-1.amazonaws.com")


def test_replay_errors_are_clear(log, tmp_path, capsys):
    assert main(["replay", str(log), "-o", str(tmp_path / "o"), "--detectors", "deepar"]) == 2
    assert "--detectors must name one or more of baseline, baseline-pages, rcf-streaming" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,user,page\n")
    assert main(["replay", str(empty), "-o", str(tmp_path / "o")]) == 2
    assert "no clicks to replay" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,user,page\n2020-07-13T00:00:00Z,u,/\nnot-a-time,u,/\n")
    assert main(["replay", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "bad.csv" in capsys.readouterr().err
    missing = tmp_path / "no-python"
    code = main(["replay", str(log), "-o", str(tmp_path / "o"), "--engine", "flink", "--flink-python", str(missing)])
    assert code == 2
    assert "make flink-venv" in capsys.readouterr().err


def test_flink_replay_without_the_job_s_jar_says_how_to_build_it(log, tmp_path, monkeypatch, capsys):
    from clickstream_anomaly.aws import lambda_engine

    checkout = tmp_path / "checkout"
    (checkout / "flink" / "clickstream_job").mkdir(parents=True)
    (checkout / "flink" / "clickstream_job" / "local.py").write_text("")
    monkeypatch.setattr(lambda_engine, "checkout_root", lambda: checkout)
    code = main(["replay", str(log), "-o", str(tmp_path / "o"), "--engine", "flink", "--flink-python", sys.executable])
    assert code == 2
    assert "make flink-jar" in capsys.readouterr().err


def test_replay_skip_bad_counts_the_bad_lines(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,user,page\n2020-07-13T00:00:00Z,u,/\nnot-a-time,u,/\n2020-07-13T00:11:00Z,v,/a\n")
    out = tmp_path / "o"
    assert main(["replay", str(bad), "-o", str(out), "--skip-bad", "--quiet", "--shards", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bad_lines"] == 1 and summary["clicks"] == summary["clicks_in_windows"] == 2
    assert read_windows(out / "windows.csv")["clicks"].tolist() == [1, 1]


@pytest.mark.slow
def test_flink_replay_equals_the_lambda_replay(log, lambda_out, tmp_path):
    if not FLINK_PYTHON.exists():
        pytest.fail(f"{FLINK_PYTHON} is missing: `make flink-venv` creates it (`make test` does)")
    out = tmp_path / "flink"
    code = main(["replay", str(log), "-o", str(out), "--engine", "flink", "--flink-python", str(FLINK_PYTHON)])
    assert code == 0
    assert (out / "windows.csv").read_bytes() == (lambda_out / "windows.csv").read_bytes()
    assert (out / "detections.csv").read_bytes() == (lambda_out / "detections.csv").read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "flink" and summary["clicks"] == summary["clicks_in_windows"]


@pytest.mark.parametrize(("name", "fmt"), [("alb.log.gz", "alb"), ("access-combined.log", "combined")])
def test_replay_reads_source_formats_as_features_does(name, fmt, tmp_path):
    path = ROOT / "tests" / "core" / "data" / "sources" / name
    out = tmp_path / "replay"
    assert main(["replay", str(path), "-o", str(out), "--format", fmt, "--shards", "1", "--quiet"]) == 0
    assert main(["features", str(path), "-o", str(tmp_path / "f.csv"), "--format", fmt, "--quiet"]) == 0
    assert (out / "windows.csv").read_bytes() == (tmp_path / "f.csv").read_bytes()
    assert json.loads((out / "summary.json").read_text())["clicks_in_windows"] > 0


def test_replay_shows_what_the_deployed_engine_rejects(tmp_path):
    """The CloudFront sample jumps 9 days between two requests: the batch command makes empty windows for
    the gap, the deployed engine rejects the click that far ahead of its event clock and reports it."""
    path = ROOT / "tests" / "core" / "data" / "sources" / "cloudfront-standard.log.gz"
    out = tmp_path / "replay"
    assert main(["replay", str(path), "-o", str(out), "--shards", "1", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clicks_not_in_windows"] == summary["event_time_rejected"] == 1
    (rejected,) = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert rejected["reason"].startswith("event time 2019-12-13T22:36:29Z is 9 days ahead of the event clock")


def test_lambda_replay_leaves_no_metrics_behind(log, capsys):
    """Powertools' metrics are shared by the process: a replay (metrics disabled) must not leave its counts
    to come out with the next handler's flush."""
    from aws_lambda_powertools import Metrics

    clicks = list(iter_clicks(log))[:500]
    run_lambda_engine(clicks, LambdaEngineSettings(shards=1))
    probe = Metrics(namespace="probe", service="probe")
    assert probe.metric_set == {}
    assert capsys.readouterr().out == ""
