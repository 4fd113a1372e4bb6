"""Cost of the time-aware baseline per window and per key, beside the KDA-faithful streaming RCF it runs
with in the detector Lambda, in the same run.

* batch: ``TimeAwareBaseline.process`` over 10 days of 10-minute windows (1 440), per window;
* streaming: one window per call with the state loaded from and saved to bytes around it (what the
  detector Lambda does per batch, here per window: the worst case);
* state: the saved bytes per key after 10 days (4 columns);
* the per-page detector (``baseline-pages``), per window and modelled page: batch, and streaming (the
  detector Lambda's and the Flink job's ``PageStream``, one window per call with its state loaded and
  saved), and its saved state per modelled page (the models and the day of page counts they are picked
  from).

Run: ``.venv/bin/python bench/baseline.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import write_markdown  # noqa: E402

from clickstream_anomaly.baseline import TimeAwareBaseline  # noqa: E402
from clickstream_anomaly.baseline.pages import PageStream  # noqa: E402
from clickstream_anomaly.detectors import PageBaselineDetector  # noqa: E402
from clickstream_anomaly.features import PageCounts, windows_from_frame, windows_to_records  # noqa: E402
from clickstream_anomaly.generator import Scenario, generate  # noqa: E402
from clickstream_anomaly.kda import KdaRcfParameters, KdaRcfStream  # noqa: E402
from clickstream_anomaly.records import FEATURE_COLUMNS  # noqa: E402


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/baseline.md")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    clicks, _ = generate(Scenario(days=10, seed=1, incidents=()))
    pages = PageCounts()
    windows = windows_from_frame(clicks, pages=pages)
    n = len(windows)
    rows: list[tuple[str, float, float | None, float]] = []

    batch = median_time(lambda: TimeAwareBaseline(window="10min").fit(None).process(windows), args.repeat)

    def streaming() -> int:
        data = TimeAwareBaseline(window="10min").fit(None).to_bytes()
        for i in range(n):
            model = TimeAwareBaseline.from_bytes(data)
            model.process(windows.iloc[[i]])
            data = model.to_bytes()
        return len(data)

    stream = median_time(streaming, 1)
    state = len(TimeAwareBaseline(window="10min").fit(windows).to_bytes())
    rows.append(("time-aware baseline", batch / n * 1e3, stream / n * 1e3, state / 1e3))

    det = PageBaselineDetector(pages=pages)
    det.detect(windows)
    modelled = max(len(det.pages_), 1)
    per_page = median_time(lambda: det.detect(windows), args.repeat) / modelled
    records = windows_to_records(windows, pages)

    def page_stream() -> int:
        data = PageStream(det.settings("10min")).to_bytes()
        for w in records:
            state = PageStream.from_bytes(data)
            state.step(w)
            data = state.to_bytes()
        return len(data)

    page_state = page_stream()
    page_time = median_time(page_stream, 1) / modelled
    rows.append(
        (
            f"baseline-pages, per page ({modelled} pages modelled)",
            per_page / n * 1e3,
            page_time / n * 1e3,
            page_state / modelled / 1e3,
        )
    )

    params = KdaRcfParameters(time_decay=4320)
    matrix = windows[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")

    def rcf_batch() -> None:
        s = KdaRcfStream(FEATURE_COLUMNS, params, random_state=0)
        for row in matrix:
            s.process_row(row)

    def rcf_stream() -> None:
        data = KdaRcfStream(FEATURE_COLUMNS, params, random_state=0).to_bytes()
        for row in matrix:
            s = KdaRcfStream.from_bytes(data)
            s.process_row(row)
            data = s.to_bytes()

    rcf = KdaRcfStream(FEATURE_COLUMNS, params, random_state=0)
    for row in matrix:
        rcf.process_row(row)
    rows.append(
        (
            "KDA streaming RCF (100 trees x 256)",
            median_time(rcf_batch, args.repeat) / n * 1e3,
            median_time(rcf_stream, 1) / n * 1e3,
            len(rcf.to_bytes()) / 1e3,
        )
    )
    lines = [
        f"{n} windows of 10 minutes, 4 columns, one key; medians of {args.repeat} runs (streaming: 1 run)",
        "",
        "| model | batch ms / window | streaming ms / window (state loaded and saved each window) | state KB |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {b:.3f} | {'–' if s is None else f'{s:.3f}'} | {kb:.1f} |" for name, b, s, kb in rows]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        write_markdown("baseline", text, argv=argv, seconds=time.perf_counter() - t_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
