"""A restart from a checkpoint continues identically: the job (tests/flink/checkpoint_job.py, a continuous file
source) reads the first part of two days of clicks, is killed after a checkpoint taken once that part is in,
and a second run restored from that checkpoint reads the rest. Together the two runs' windows and detections
must be those of the batch ``features`` and baseline over the whole input, which an uninterrupted run of the
job equals (tests/flink/test_job.py): the open windows, the detector's state and the source's position came
back from the checkpoint (a window across the cut, day 2 judged on day 1's history, no click read twice)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from clickstream_anomaly.features import PageCounts, compute_windows, records_to_windows
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.records import Click, Detection, Window, write_detections_csv
from tests.conftest import engine_reference_detections

ROOT = Path(__file__).resolve().parents[2]
FLINK_PYTHON = Path(os.environ.get("FLINK_PYTHON", ROOT / ".venv-flink" / "bin" / "python"))
DRIVER = Path(__file__).with_name("checkpoint_job.py")
CUT = datetime(2020, 7, 8, 10, 5, tzinfo=UTC)  # inside the 10:00 window of day 2
# Windows closed by each part's last click (out-of-orderness 5 min + allowed lateness 10 min past their end):
# the first part's up to 09:30 on day 2; the second part's (a last click an hour after day 2) all of both days.
FIRST_PART_WINDOWS = 144 + 58
ALL_WINDOWS = 2 * 144

pytestmark = pytest.mark.slow


def clicks() -> list[Click]:
    frame, _ = generate(Scenario(days=2, seed=7))
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    rows = [Click(t.to_pydatetime(), str(u), str(p)) for t, u, p in zip(ts, frame.user, frame.page, strict=True)]
    return [*rows, Click(rows[-1].timestamp + timedelta(hours=1), "u-last", "/")]


def put(directory: Path, name: str, rows: list[Click]) -> None:
    """Write a file into the watched directory atomically (a hidden name first, which the source skips)."""
    tmp = directory / f".{name}"
    tmp.write_text("".join(c.to_json() + "\n" for c in rows), encoding="utf-8")
    tmp.rename(directory / name)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def start(checkpoints: Path, inputs: Path, out: Path, restore: Path | None = None) -> subprocess.Popen:
    out.mkdir()
    cmd = [
        str(FLINK_PYTHON),
        str(DRIVER),
        str(inputs),
        str(checkpoints),
        str(out),
        *([str(restore)] if restore else []),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "flink"), str(ROOT)]), "FLINK_LOG_DIR": str(out)}
    with open(out / "job.err", "w") as err:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


DETECTORS = 2  # detections per window: the job's default detectors (baseline, baseline-pages)


def wait_for(proc: subprocess.Popen, out: Path, windows: int, timeout: float = 240) -> None:
    """Until ``out`` holds ``windows`` windows and their detections (fails if the job dies first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (out / "job.err").read_text()[-3000:]
        done = len(lines(out / "detections.jsonl")) >= DETECTORS * windows
        if len(lines(out / "windows.jsonl")) >= windows and done:
            return
        time.sleep(1)
    pytest.fail(f"{len(lines(out / 'windows.jsonl'))} of {windows} windows in {timeout} s")


def completed_checkpoint(checkpoints: Path, after: float, timeout: float = 60) -> Path:
    """The newest checkpoint whose metadata was written after ``after`` (epoch seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [m for m in checkpoints.glob("*/chk-*/_metadata") if m.stat().st_mtime > after]
        if done:
            return max(done, key=lambda m: int(m.parent.name.split("-")[1])).parent
        time.sleep(0.5)
    pytest.fail(f"no checkpoint completed in {timeout} s")


def kill(proc: subprocess.Popen) -> None:
    """Kill the job's process group at once (a crash, not a graceful stop)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("checkpoint")
    rows = clicks()
    inputs, checkpoints = tmp / "in", tmp / "checkpoints"
    inputs.mkdir()
    put(inputs, "part-1.jsonl", [c for c in rows if c.timestamp < CUT])
    first = start(checkpoints, inputs, tmp / "run-1")
    try:
        wait_for(first, tmp / "run-1", FIRST_PART_WINDOWS)
        checkpoint = completed_checkpoint(checkpoints, after=time.time())
    finally:
        kill(first)
    put(inputs, "part-2.jsonl", [c for c in rows if c.timestamp >= CUT])
    second = start(checkpoints, inputs, tmp / "run-2", restore=checkpoint)
    try:
        wait_for(second, tmp / "run-2", ALL_WINDOWS - FIRST_PART_WINDOWS)
    finally:
        kill(second)
    whole = tmp / "clicks.jsonl"
    whole.write_text("".join(c.to_json() + "\n" for c in rows), encoding="utf-8")
    return whole, tmp / "run-1", tmp / "run-2"


def test_windows_after_a_restart_equal_the_batch_features(restarted):
    """The first run emitted every window its part closes before the checkpoint, so the second run starts
    with the next one: had it not restored the source's position and the open windows, it would read the
    first part again and emit all 288."""
    whole, run1, run2 = restarted
    first, second = lines(run1 / "windows.jsonl"), lines(run2 / "windows.jsonl")
    assert (len(first), len(second)) == (FIRST_PART_WINDOWS, ALL_WINDOWS - FIRST_PART_WINDOWS)
    records = [Window.from_json(w) for w in first + second]
    pages = PageCounts()
    batch = compute_windows(whole, fmt="auto", pages=pages)
    pd.testing.assert_frame_equal(
        records_to_windows(records), batch.iloc[:ALL_WINDOWS], check_dtype=False, check_exact=True
    )
    per_window = pages.of_window()  # the page counts too: the window across the cut's came back from the journal
    assert [w.page_clicks for w in records] == [per_window.get(s, {}) for s in batch["window_start"][:ALL_WINDOWS]]
    across = batch.set_index("window_start").loc[pd.Timestamp(CUT).floor("10min")]
    assert 0 < across["clicks"] == next(json.loads(w)["clicks"] for w in second if "T10:00:00Z" in w)


def test_detections_after_a_restart_equal_the_batch_baselines(restarted):
    whole, run1, run2 = restarted
    detections = lines(run1 / "detections.jsonl") + lines(run2 / "detections.jsonl")
    batch, job = io.StringIO(), io.StringIO()
    write_detections_csv(engine_reference_detections(whole, fmt="auto"), batch)  # baseline and baseline-pages
    write_detections_csv((Detection.from_mapping(json.loads(d)) for d in detections), job)
    assert job.getvalue().splitlines() == batch.getvalue().splitlines()[: DETECTORS * ALL_WINDOWS + 1]  # + the header
    judged = pd.read_csv(io.StringIO(job.getvalue()))
    judged = judged[judged["detector"] == "baseline"]
    assert (~judged["warmup"].iloc[FIRST_PART_WINDOWS:]).sum() >= 50  # judged on the first run's history
