"""Flink job throughput: clicks/s of the whole job (decode to detections) on one local slot at 10 k, 100 k and
1 M users per window, with single-click records and with the producer's aggregated records, the windows
and their ``page_clicks`` checked against the batch ``features`` and its page counts each run.

Per size and record shape it reports:

* the job's wall time from ``summary.json`` (``python -m clickstream_job.local``, the command
  ``bench/streaming.py`` runs), start-up included, and the steady rate without the start-up (the wall time
  of a one-click run, measured first);
* ``decode`` and ``windowing`` alone: the job's own per-record code (:func:`logic.decode`,
  :meth:`logic.OpenWindows.add_record`) timed in this process on the same records, no Flink;
* peers in the same run: Flink SQL (a JVM JSON source, a 10-minute tumbling window with exact
  ``COUNT(DISTINCT)``, none of the job's semantics: no rejects, lateness or empty windows) and, with
  ``--peer-checkout DIR``, the job of another checkout (``/work/main``: the job before this one), run
  ``--repeat`` times as this one, its wall rate and its rate per JVM CPU second.

Run: ``.venv/bin/python bench/flink_job.py [--users 10000 100000 1000000] [--clicks 3000000] [--markdown]``
(``.venv-flink`` must exist: ``make flink-venv``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_markdown

from clickstream_anomaly.features import PageCounts, compute_windows, read_windows
from clickstream_anomaly.producer import AGGREGATE_BYTES, Entry, take_batch
from clickstream_anomaly.records import CLICK_SEPARATOR, Window
from clickstream_anomaly.streaming.eventtime import EventClock
from flink.clickstream_job.logic import JobSettings, OpenWindows, decode

ROOT = Path(__file__).resolve().parents[1]
FLINK_PYTHON = Path(os.environ.get("FLINK_PYTHON", ROOT / ".venv-flink" / "bin" / "python"))
WINDOW_SECONDS = 600
T0 = np.datetime64("2024-03-04T00:00:00", "ms")
RECORD_SEPARATOR = "\x1e"  # clickstream_job.local.RECORD_SEPARATOR (that module needs PyFlink)

SQL_PEER = """
import sys, time
from pyflink.table import EnvironmentSettings, TableEnvironment
t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t.get_config().set("parallelism.default", "1")
t.execute_sql(f'''CREATE TABLE clicks (`timestamp` STRING, `user` STRING, page STRING,
  ts AS TO_TIMESTAMP(REPLACE(REPLACE(`timestamp`, 'T', ' '), 'Z', '')), WATERMARK FOR ts AS ts - INTERVAL '5' MINUTE)
  WITH ('connector' = 'filesystem', 'path' = '{sys.argv[1]}', 'format' = 'json')''')
began = time.perf_counter()
rows = t.execute_sql('''SELECT window_start, COUNT(DISTINCT page), COUNT(DISTINCT `user`), COUNT(*)
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTES)) GROUP BY window_start, window_end''')
with rows.collect() as it:
    n = sum(1 for _ in it)
print(n, time.perf_counter() - began)
"""


def make_clicks(users: int, clicks: int, per_user: int, session: float, seed: int) -> pd.DataFrame:
    """About ``clicks`` clicks (at least one window's) in windows of ``users`` users each, each user's
    ``per_user`` clicks of a window within ``session`` seconds; half of a window's users are new, half were
    in the one before. Sorted by time, ms resolution."""
    rng = np.random.default_rng(seed)
    windows = max(1, round(clicks / (users * per_user)))
    parts = []
    for w in range(windows):
        ids = np.repeat(np.arange(users) + w * (users // 2), per_user)
        begin = rng.uniform(0, WINDOW_SECONDS - session, users).repeat(per_user)
        seconds = w * WINDOW_SECONDS + begin + rng.uniform(0, session, ids.size)
        parts.append(pd.DataFrame({"ms": (seconds * 1000).astype("int64"), "user": ids}))
    frame = pd.concat(parts).sort_values("ms", kind="stable", ignore_index=True)
    frame["page"] = rng.zipf(1.3, len(frame)) % 2000
    return frame


def click_lines(frame: pd.DataFrame) -> list[str]:
    stamps = np.datetime_as_string(T0 + frame["ms"].to_numpy().astype("timedelta64[ms]"), unit="ms")
    users, pages = frame["user"].to_numpy(), frame["page"].to_numpy()
    return [
        f'{{"timestamp":"{t}Z","user":"u{u}","page":"/p{p}"}}' for t, u, p in zip(stamps, users, pages, strict=True)
    ]


def aggregated(lines: list[str], frame: pd.DataFrame) -> list[str]:
    """The records the producer sends for these clicks (:func:`take_batch` with aggregation), as input lines."""
    seconds = frame["ms"].to_numpy() / 1000.0
    users = frame["user"].to_numpy()
    pending = deque(Entry(line.encode(), f"u{u}", ts) for line, u, ts in zip(lines, users, seconds, strict=True))
    out = []
    while pending:
        for entry in take_batch(pending, aggregate_bytes=AGGREGATE_BYTES):
            out.append(entry.data.replace(CLICK_SEPARATOR, RECORD_SEPARATOR.encode()).decode())
    return out


def run_job(path: Path, out: Path, checkout: Path = ROOT, repeat: int = 1, options: tuple[str, ...] = ()) -> dict:
    """``python -m clickstream_job.local`` of ``checkout`` on ``path``: the summary of its fastest of
    ``repeat`` runs (and the least JVM CPU of them)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(checkout / "flink")]))
    cmd = [str(FLINK_PYTHON), "-m", "clickstream_job.local", str(path), "-o", str(out), *options]
    runs = []
    for _ in range(repeat):
        subprocess.run(cmd, cwd=checkout / "flink", env=env, check=True, capture_output=True, timeout=3600)
        runs.append(json.loads((out / "summary.json").read_text()))
    best = min(runs, key=lambda r: r["seconds"])
    if "jvm_cpu_seconds" in best:
        best["jvm_cpu_seconds"] = min(r["jvm_cpu_seconds"] for r in runs)
    return best


REALTIME_CONFIG = {"salt": "a bench salt"}  # the default fields, in CloudFront's console order


def realtime_lines(frame: pd.DataFrame) -> list[str]:
    """The clicks as CloudFront real-time log records (the default fields; a user is an IP + user agent)."""
    stamps = (T0.astype("int64") + frame["ms"].to_numpy()) / 1000
    users, pages = frame["user"].to_numpy(), frame["page"].to_numpy()
    return [
        f"{t:.3f}\t10.{u >> 16 & 255}.{u >> 8 & 255}.{u & 255}\t200\tGET\t/p{p}?q=1\tMozilla/5.0%20(u{u >> 24})\t-"
        for t, u, p in zip(stamps, users, pages, strict=True)
    ]


def bench_realtime(args: argparse.Namespace, tmp: Path, startup: dict) -> list[list[object]]:
    """The job on CloudFront real-time records (``--clicks-format cloudfront-realtime``), windows checked."""
    from clickstream_anomaly.sources.settings import SourceSettings

    frame = make_clicks(args.realtime_users, args.realtime_clicks, args.clicks_per_user, 60.0, args.seed)
    path, config = tmp / "realtime.log", tmp / "realtime-source.json"
    path.write_text("\n".join(realtime_lines(frame)) + "\n", encoding="utf-8")
    config.write_text(json.dumps(REALTIME_CONFIG), encoding="utf-8")
    truth = compute_windows(path, fmt="cloudfront-realtime", settings=SourceSettings.from_file(config))
    options = ("--execution-mode", args.execution_mode, "--clicks-format", "cloudfront-realtime")
    options += ("--source-config", str(config))
    checkouts = [("this checkout", ROOT)] + ([("peer checkout", args.peer_checkout)] if args.peer_checkout else [])
    rows = []
    for name, checkout in checkouts:
        summary = run_job(path, tmp / "out-realtime", checkout, repeat=args.repeat, options=options)
        job = read_windows(tmp / "out-realtime" / "windows.csv")
        pd.testing.assert_frame_equal(job, truth, check_dtype=False, check_exact=True)  # exact, or no figure
        n, wall = summary["clicks"], summary["seconds"]
        users = f"{int(truth['users'].max()):,}".replace(",", " ")
        row = [name, users, len(truth), n, f"{wall:.1f}", rate(n, wall), rate(n, wall - startup["seconds"])]
        rows.append([*row, rate(n, summary["jvm_cpu_seconds"] - startup["jvm_cpu_seconds"])])
        print(" | ".join(str(c) for c in rows[-1]), file=sys.stderr, flush=True)
    return rows


def run_sql_peer(path: Path) -> float:
    done = subprocess.run(
        [str(FLINK_PYTHON), "-c", SQL_PEER, str(path)], check=True, capture_output=True, text=True, timeout=3600
    )
    return float(done.stdout.split()[-1])


def python_alone(records: list[str]) -> tuple[float, float, int]:
    """Seconds of the job's decode and of its windowing on ``records`` (this process, no Flink); clicks."""
    clock, now = EventClock(), time.time()
    began = time.perf_counter()
    decoded = [decode(r.replace(RECORD_SEPARATOR, "\n"), clock, now)[0] for r in records]
    decoding = time.perf_counter() - began
    wins = OpenWindows.for_settings(JobSettings())
    began = time.perf_counter()
    for clicks in decoded:
        wins.add_record(clicks)
        wins.close(wins.watermark)
    wins.close(2**62)
    return decoding, time.perf_counter() - began, sum(len(c) for c in decoded)


def rate(clicks: int, seconds: float) -> str:
    return f"{clicks / seconds:,.0f}".replace(",", " ") if seconds > 0 else "-"


def bench_size(args: argparse.Namespace, users: int, tmp: Path, startup: dict) -> list[list[object]]:
    rows = []
    for number, session in enumerate(args.sessions):
        frame = make_clicks(users, args.clicks, args.clicks_per_user, session, args.seed)
        lines = click_lines(frame)
        single = tmp / f"single-{users}.jsonl"
        single.write_text("\n".join(lines) + "\n", encoding="utf-8")
        pages = PageCounts()
        # one chunk: WindowAccumulator's page counts fail ("multiple levels only valid with MultiIndex") when
        # a third chunk comes before any window is finished
        truth = compute_windows(single, fmt="auto", pages=pages, chunk_rows=len(frame) + 1)
        per_window = pages.of_window()
        truth_pages = [per_window.get(start, {}) for start in truth["window_start"]]
        shapes = {"single": lines} if number == 0 else {}
        shapes["aggregated"] = aggregated(lines, frame)
        for shape, records in shapes.items():
            path = single if shape == "single" else tmp / f"aggregated-{users}.jsonl"
            if shape != "single":
                path.write_text("\n".join(records) + "\n", encoding="utf-8")
            mode = ("--execution-mode", args.execution_mode)
            summary = run_job(path, tmp / f"out-{users}", repeat=args.repeat, options=mode)
            job = read_windows(tmp / f"out-{users}" / "windows.csv")
            pd.testing.assert_frame_equal(job, truth, check_dtype=False, check_exact=True)  # exact, or no figure
            emitted = (tmp / f"out-{users}" / "windows.jsonl").read_text(encoding="utf-8").splitlines()
            assert [Window.from_json(w).page_clicks for w in emitted] == truth_pages, "page_clicks differ"
            n, wall = summary["clicks"], summary["seconds"]
            decoding, windowing, _ = python_alone(records)
            row = [f"{int(truth['users'].max()):,}".replace(",", " "), f"{shape}, {session:g} s", len(truth)]
            row += [f"{n / len(records):.2f}", n, f"{wall:.1f}", rate(n, wall), rate(n, wall - startup["seconds"])]
            row.append(rate(n, summary["jvm_cpu_seconds"] - startup["jvm_cpu_seconds"]))
            row += [rate(n, decoding), rate(n, windowing)]
            if shape == "single":
                row.append(rate(n, run_sql_peer(single)))
                if args.peer_checkout is not None:
                    peer = run_job(path, tmp / f"peer-{users}", args.peer_checkout, repeat=args.repeat, options=mode)
                    row.append(rate(n, peer["seconds"]))
                    row.append(rate(n, peer["jvm_cpu_seconds"] - startup["jvm_cpu_seconds"]))
            rows.append(row)
            print(" | ".join(str(c) for c in row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="*", default=[10_000, 100_000, 1_000_000], help="per window")
    ap.add_argument("--clicks", type=int, default=2_000_000, help="clicks per size and session")
    ap.add_argument("--clicks-per-user", type=int, default=3, help="per window (the generator's 3.3 pages a visit)")
    ap.add_argument(
        "--sessions", type=float, nargs="+", default=[60.0, 1.0], help="seconds a user's clicks in a window span"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--execution-mode", default="thread", choices=("thread", "process"), help="Python's, for the job")
    ap.add_argument("--repeat", type=int, default=1, help="runs of the job per row (the fastest is shown)")
    ap.add_argument("--peer-checkout", type=Path, default=None, help="also run this checkout's job (single)")
    ap.add_argument("--realtime-users", type=int, default=5_000, help="per window, CloudFront real-time (0: none)")
    ap.add_argument("--realtime-clicks", type=int, default=30_000, help="CloudFront real-time records")
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/flink_job.md")
    args = ap.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        one = tmp / "one.jsonl"
        one.write_text('{"timestamp":"2024-03-04T00:00:00Z","user":"u","page":"/"}\n', encoding="utf-8")
        startup = run_job(one, tmp / "out-one", repeat=3, options=("--execution-mode", args.execution_mode))
        rows = [row for users in args.users for row in bench_size(args, users, tmp, startup)]
        realtime = bench_realtime(args, tmp, startup) if args.realtime_users else []
    head = ["users per window", "records, session", "windows", "clicks per record", "clicks", "job wall s"]
    head += ["job clicks/s", "without start-up", "per CPU second", "decode alone", "windowing alone"]
    head += ["Flink SQL (peer)"]
    head += ["peer checkout", "peer per CPU second"] if args.peer_checkout is not None else []
    note = (
        f"One local slot, Python {args.execution_mode} mode, the fastest of {args.repeat} run(s) per row; "
        f"start-up (the fastest of 3 one-click runs) {startup['seconds']:.1f} s wall, "
        f"{startup['jvm_cpu_seconds']:.1f} s of JVM CPU. *Without start-up*: clicks / (wall - start-up wall); "
        "*per CPU second*: clicks / the JVM's CPU seconds beyond the start-up's (the whole job in thread "
        "mode, where the Python operators run inside the JVM; steadier than the wall time on a shared machine). "
        "*Decode* and *windowing alone*: the job's own per-record code in one Python process, no Flink. "
        "Every run's windows equal the batch `features` exactly, their `page_clicks` the batch's page counts. "
        "Flink SQL: a JVM JSON source and `COUNT(DISTINCT)` in a tumbling window on the single-click records, "
        "none of the job's semantics, start-up included."
    )
    text = "### Flink job throughput\n\n" + note + "\n\n" + markdown_table(head, rows) if rows else ""
    if realtime:
        head = ["job", "users per window", "windows", "clicks", "job wall s", "job clicks/s", "without start-up"]
        text += "\n\nCloudFront real-time records (`--clicks-format cloudfront-realtime`, one request a record; "
        text += f"windows equal the batch `features` of the same log; start-up {startup['seconds']:.1f} s):\n\n"
        text += markdown_table([*head, "per CPU second"], realtime)
    print(text)
    if args.markdown:
        write_markdown("flink_job", text, seconds=time.perf_counter() - began)


if __name__ == "__main__":
    main()
