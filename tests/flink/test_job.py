"""The PyFlink job on a local mini-cluster (file source), run through .venv-flink's interpreter, against the
core's batch ``features`` and baseline run here, in the main virtualenv (its own numpy and pandas)."""

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.features import PageCounts, compute_windows, read_windows
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.records import PAGES_PER_WINDOW, Click, Window, write_detections_csv
from clickstream_anomaly.sources import SourceSettings
from tests.conftest import engine_reference_detections

ROOT = Path(__file__).resolve().parents[2]
FLINK_PYTHON = Path(os.environ.get("FLINK_PYTHON", ROOT / ".venv-flink" / "bin" / "python"))

pytestmark = pytest.mark.slow


def run_job(clicks: Path, out: Path, *options: str) -> dict:
    """Run ``clickstream_job.local`` on ``clicks``; returns its summary."""
    if not FLINK_PYTHON.exists():
        pytest.fail(f"{FLINK_PYTHON} is missing: `make flink-venv` creates it (`make test` does)")
    cmd = [str(FLINK_PYTHON), "-m", "clickstream_job.local", str(clicks), "-o", str(out), *options]
    done = subprocess.run(cmd, cwd=ROOT / "flink", capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "summary.json").read_text())


def write_clicks(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def page_clicks(out: Path) -> list[dict[str, int] | None]:
    """The ``page_clicks`` of the job's windows (``OUT/windows.jsonl``, the features stream's JSON)."""
    return [Window.from_json(line).page_clicks for line in (out / "windows.jsonl").read_text().splitlines()]


def batch_page_clicks(windows: pd.DataFrame, pages: PageCounts) -> list[dict[str, int]]:
    """The batch's clicks per page of each of ``windows`` (``{}`` for one without clicks)."""
    per_window = pages.of_window()
    return [per_window.get(start, {}) for start in windows["window_start"]]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Two days of generated clicks with a two-hour outage and three malformed records, through the job."""
    clicks, _ = generate(Scenario(days=2, seed=3))
    ts = pd.to_datetime(clicks["timestamp"], utc=True)
    outage = (ts >= pd.Timestamp("2020-07-08 03:00Z")) & (ts < pd.Timestamp("2020-07-08 05:00Z"))
    clicks = clicks[~outage.to_numpy()]
    rows = [
        Click(t.to_pydatetime(), str(u), str(p)).to_json()
        for t, u, p in zip(ts[~outage], clicks.user, clicks.page, strict=True)
    ]
    rows.insert(100, "not json")
    rows.insert(5000, '{"timestamp":"2020-07-07T12:00:00Z","user":"","page":"/"}')
    rows.insert(20000, '{"timestamp":"2020-07-07T12:00:00Z","user":"a\x1db","page":"/"}')  # the bundles' separator
    tmp = tmp_path_factory.mktemp("site")
    path = write_clicks(tmp / "clicks.jsonl", rows)
    summary = run_job(path, tmp / "out")
    return path, tmp / "out", summary


def test_windows_equal_batch_features(site):
    path, out, summary = site
    batch = compute_windows(path, fmt="auto", skip_bad=True)
    job = read_windows(out / "windows.csv")
    pd.testing.assert_frame_equal(job, batch, check_dtype=False, check_exact=True)
    assert (batch["clicks"] == 0).sum() >= 12  # the outage's windows came out
    assert summary["windows"] == len(batch) == 288


def test_page_clicks_equal_the_batch_page_counts(site):
    path, out, _ = site
    pages = PageCounts()
    batch = compute_windows(path, fmt="auto", skip_bad=True, pages=pages)
    job = page_clicks(out)
    assert job == batch_page_clicks(batch, pages)
    assert job.count({}) == (batch["clicks"] == 0).sum() >= 12 and max(map(len, job)) > 10


def test_a_sampled_source_with_more_than_200_pages_gives_the_batch_page_counts(tmp_path):
    """CloudFront real-time records from a source that logs 30 % of the requests, two windows of 300
    distinct pages (150 with 2 clicks, 150 with 1: the 200th place falls among the 1-click pages) and an
    empty one between them: the batch windows (clicks scaled) and page counts (the top 200 of the raw
    counts, ties by page name, then scaled), exactly. (Few clicks: the job decodes a CloudFront real-time
    record in ~10 us, its JSON clicks in ~6 us.)"""
    rng = np.random.default_rng(9)
    t0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC).timestamp()
    rows = []
    for window in (0, 2):  # 10:10 is empty
        clicks = [f"/p{i}" for i in range(300) for _ in range(1 + i % 2)]
        rng.shuffle(clicks)
        for k, page in enumerate(clicks):
            when = f"{t0 + 600 * window + 600 * k / len(clicks):.3f}"
            rows.append("\t".join([when, f"192.0.2.{rng.integers(40)}", "200", "GET", page, "Mozilla/5.0", "-"]))
    config = tmp_path / "source.json"
    config.write_text(json.dumps({"salt": "a shared secret salt", "sampling_rate": 30}), encoding="utf-8")
    path = write_clicks(tmp_path / "realtime.log", rows)
    run_job(path, tmp_path / "out", "--clicks-format", "cloudfront-realtime", "--source-config", str(config))
    pages = PageCounts()
    batch = compute_windows(path, fmt="cloudfront-realtime", settings=SourceSettings.from_file(config), pages=pages)
    job = read_windows(tmp_path / "out" / "windows.csv")
    pd.testing.assert_frame_equal(job, batch, check_dtype=False, check_exact=True)
    assert job["clicks"].tolist() == [1500, 0, 1500]  # 450 clicks each at 30 %
    got = page_clicks(tmp_path / "out")
    assert got == batch_page_clicks(batch, pages)
    assert [len(p) for p in got] == [PAGES_PER_WINDOW, 0, PAGES_PER_WINDOW]
    tied = sorted(f"/p{i}" for i in range(0, 300, 2))  # the 1-click pages (3 scaled), by name
    assert sorted(p for p, n in got[0].items() if n == 3) == tied[:50]


def test_detections_equal_the_batch_baselines(site):
    path, out, _ = site
    batch = io.StringIO()  # the job's default detectors: the baseline and the per-page baseline
    write_detections_csv(engine_reference_detections(path, fmt="auto", skip_bad=True), batch)
    assert (out / "detections.csv").read_text(encoding="utf-8") == batch.getvalue()
    judged = pd.read_csv(out / "detections.csv")
    judged = judged[judged["detector"] == "baseline"]
    assert (~judged["warmup"]).sum() >= 100 and judged["is_anomaly"].any()  # day 2 is judged; the outage flagged


def test_malformed_records_routed_aside_with_reasons(site):
    _, out, summary = site
    rejects = [json.loads(line) for line in (out / "malformed.jsonl").read_text().splitlines()]
    reasons = sorted(r["reason"] for r in rejects)
    assert reasons[:2] == ["empty user", "not JSON: Expecting value: line 1 column 1 (char 0)"]
    # a record holding the separator of the JVM's bundles comes alone, whole, in order
    assert reasons[2].startswith("not JSON: Invalid control character") and '"user":"a\x1db"' in rejects[2]["raw"]
    assert summary["malformed_clicks"] == 3 and summary["late_clicks_dropped"] == 0


def test_late_clicks_counted_within_lateness_dropped_beyond(tmp_path):
    """No out-of-orderness, 10 minutes of lateness. The watermark moves with each record (Flink's bounded
    out-of-orderness rule), so which click is late does not depend on timing."""
    t0 = datetime(2024, 3, 4, tzinfo=UTC)

    def at(minutes: float, user: str) -> str:
        return Click(t0 + timedelta(minutes=minutes), user, f"/{user}").to_json()

    filler = 3
    rows = [at(m, f"a{m}") for m in range(10)]
    rows += [at(12, f"b{i}") for i in range(filler)]  # watermark 00:12: window 00:00 ended, open until 00:20
    rows += [at(5, "late-counted")]
    rows += [at(25, f"c{i}") for i in range(filler)]  # watermark 00:25: window 00:00 closed
    rows += [at(6, "late-dropped")]
    path = write_clicks(tmp_path / "late.jsonl", rows)
    summary = run_job(path, tmp_path / "out", "--out-of-orderness", "0")
    assert summary["late_clicks_counted"] == 1
    assert summary["late_clicks_dropped"] == 1
    job = read_windows(tmp_path / "out" / "windows.csv")
    assert job["clicks"].tolist() == [11, filler, filler]
    assert job["users"].tolist() == [11, filler, filler]
    kept = write_clicks(tmp_path / "kept.jsonl", rows[:-1])  # the batch without the dropped click
    pd.testing.assert_frame_equal(job, compute_windows(kept, fmt="auto"), check_dtype=False, check_exact=True)
    (late,) = [json.loads(line) for line in (tmp_path / "out" / "late.jsonl").read_text().splitlines()]
    assert late == {"reason": "beyond the allowed lateness", "ts_ns": int(pd.Timestamp(t0).value + 6 * 60 * 10**9)}


def test_aggregated_records_in_process_mode_give_the_batch_windows(tmp_path):
    """The producer's aggregated records (a line's clicks joined by RS, the stream's newline) through the job
    in Python's ``process`` mode: the batch windows; a bad click inside a record is rejected alone."""
    clicks, _ = generate(Scenario(days=1, seed=4))
    ts = pd.to_datetime(clicks["timestamp"], utc=True)
    rows = [
        Click(t.to_pydatetime(), str(u), str(p)).to_json() for t, u, p in zip(ts, clicks.user, clicks.page, strict=True)
    ]
    records = ["\x1e".join(rows[i : i + 4]) for i in range(0, len(rows), 4)]
    records[10] += '\x1e{"timestamp":"2020-07-07T00:30:00Z","user":"x"}'
    summary = run_job(
        write_clicks(tmp_path / "records.jsonl", records), tmp_path / "out", "--execution-mode", "process"
    )
    single = write_clicks(tmp_path / "clicks.jsonl", rows)
    job = read_windows(tmp_path / "out" / "windows.csv")
    pd.testing.assert_frame_equal(job, compute_windows(single, fmt="auto"), check_dtype=False, check_exact=True)
    rejects = [json.loads(line) for line in (tmp_path / "out" / "malformed.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejects] == ["click 5 of 5: missing field(s): page"]
    assert summary["clicks"] == len(rows) and summary["windows"] == 144


def test_the_core_runs_on_pyflinks_numpy_and_pandas():
    code = "import numpy, pandas, clickstream_anomaly.baseline; print(numpy.__version__, pandas.__version__)"
    done = subprocess.run([str(FLINK_PYTHON), "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1.24.4", "2.2.3"]
    assert sys.executable != str(FLINK_PYTHON)
