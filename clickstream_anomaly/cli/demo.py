"""``clickstream-anomaly demo``: the main job on built-in data, no AWS account needed."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..clicks_csv import write_clicks
from ..features import compute_windows, write_windows
from ..generator import Scenario, generate, write_labels


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate the blog scenario, compute features, detect, report",
                       description="Generate the reference blog's 9-day clickstream into a folder, compute "
                                   "10-minute features and summarise them.")
    p.add_argument("-o", "--output", type=Path, default=Path("demo-output"),
                   help="output folder (default demo-output)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="less output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    clicks, labels = generate(Scenario(seed=args.seed))
    write_clicks(clicks, out / "clicks.csv")
    write_labels(labels, out / "labels.csv")
    windows = compute_windows(out / "clicks.csv")
    write_windows(windows, out / "windows.csv")
    print(f"generated {len(clicks):,} clicks over {len(windows):,} windows into {out}/")
    desc = windows[["urls", "users", "clicks", "residual"]].describe().loc[["mean", "min", "max"]]
    print(desc.round(1).to_string())
    anomalous = labels[labels["is_anomaly"] == 1]
    for kind, grp in anomalous.groupby("incident", sort=False):
        first, last = grp["window_start"].min(), grp["window_start"].max()
        print(f"labelled incident {kind}: windows {first:%Y-%m-%d %H:%M} .. {last:%H:%M} UTC ({len(grp)})")
    print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0
