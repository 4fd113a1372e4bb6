"""``clickstream-anomaly demo``: the main job on built-in data, no AWS account needed."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..clicks_csv import write_clicks
from ..features import PageCounts, compute_windows, write_windows
from ..generator import Scenario, generate, write_labels
from .detect import add_detection_options, detect_and_write


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate the blog scenario, compute features, detect, report",
        description="Generate the reference blog's 9-day clickstream, compute 10-minute "
        "features, run the default detectors, print the incidents and metrics and "
        "write the report into a folder.",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("demo-output"), help="output folder (default demo-output)")
    add_detection_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    clicks, labels = generate(Scenario(seed=args.seed))
    write_clicks(clicks, out / "clicks.csv")
    write_labels(labels, out / "labels.csv")
    pages = PageCounts()
    windows = compute_windows(out / "clicks.csv", end="2020-07-15 23:50", pages=pages)
    write_windows(windows, out / "windows.csv")
    if not args.quiet:
        print(
            f"generated {len(clicks):,} clicks over {len(windows):,} 10-minute windows "
            f"(blog scenario, seed {args.seed}) into {out}/",
            file=sys.stderr,
        )
    detect_and_write(windows, args, labels, out, pages)
    if not args.quiet:
        print(f"done in {time.perf_counter() - t0:.0f} s; open {out / 'report.html'}", file=sys.stderr)
    return 0
