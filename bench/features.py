"""Features throughput: clicks/s of ``compute_windows`` (chunked, bounded memory) on a large clicks CSV,
beside a naive pandas peer (read everything, ``groupby(...).nunique()``) in the same run.

Run: ``.venv/bin/python bench/features.py [--volume 40] [--markdown]`` (volume 40: about 8 M clicks over 9
days); ``--markdown`` also writes the table to ``docs/benchmarks/features.md`` (:mod:`report`).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import write_markdown

from clickstream_anomaly.clicks_csv import write_clicks
from clickstream_anomaly.features import compute_windows
from clickstream_anomaly.generator import Scenario, generate


def naive(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["window_start"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601").dt.floor("10min")
    g = frame.groupby("window_start")
    return pd.DataFrame({"urls": g["page"].nunique(), "users": g["user"].nunique(), "clicks": g.size()})


def best_of(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--volume", type=float, default=40.0)
    ap.add_argument("--chunk-rows", type=int, default=1_000_000)
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/features.md")
    args = ap.parse_args()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clicks.csv"
        clicks, _ = generate(Scenario(volume=args.volume))
        write_clicks(clicks, path)
        n = len(clicks)
        del clicks
        size_mb = path.stat().st_size / 1e6
        t_ours, ours = best_of(lambda: compute_windows(path, chunk_rows=args.chunk_rows))
        t_naive, ref = best_of(lambda: naive(path))
        ref = ref.reindex(pd.DatetimeIndex(ours["window_start"]), fill_value=0)
        assert (ours["clicks"].to_numpy() == ref["clicks"].to_numpy()).all()
        assert (ours["users"].to_numpy() == ref["users"].to_numpy()).all()
        assert (ours["urls"].to_numpy() == ref["urls"].to_numpy()).all()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = "\n".join(
        [
            f"input: {n:,} clicks, {size_mb:.0f} MB CSV, chunks of {args.chunk_rows:,} rows",
            "",
            "| implementation | validates input | bounded memory | seconds (best of 3) | clicks/s | time ÷ ours |",
            "|---|---|---|---|---|---|",
            f"| compute_windows (chunked) | yes | yes | {t_ours:.2f} | {n / t_ours:,.0f} | 1.00 |",
            f"| naive pandas read_csv + groupby/nunique | no | no | {t_naive:.2f} | {n / t_naive:,.0f} | "
            f"{t_naive / t_ours:.2f} |",
            "",
            f"peak RSS of the whole process (includes generating the data): {rss:.0f} MB",
        ]
    )
    print(text)
    if args.markdown:
        write_markdown("features", text, seconds=time.perf_counter() - t_start)


if __name__ == "__main__":
    main()
