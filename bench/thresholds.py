"""Threshold rules on the demo's RCF scores: false and true anomalous windows for each rule, one run.

Compares the project's ``sigma:3`` (mean + 3 upper semi-deviations of scores capped at 2x p99) with plain
mean + 3 std, iterative sigma clipping, and two percentiles. Run: ``.venv/bin/python bench/thresholds.py
[--markdown]`` (``--markdown`` also writes the table to ``docs/benchmarks/thresholds.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_markdown

from clickstream_anomaly.detectors import BatchRCFDetector, StreamingRCFDetector
from clickstream_anomaly.features import windows_from_frame
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.thresholds import sigma_threshold


def clipped(s: np.ndarray, k: float = 3.0) -> float:
    kept = s
    t = kept.mean() + k * kept.std()
    for _ in range(20):
        inside = kept[kept <= t]
        if inside.size == kept.size:
            break
        kept = inside
        t = kept.mean() + k * kept.std()
    return float(t)


RULES = {
    "sigma:3 (ours: σ⁺, capped)": lambda s: sigma_threshold(s, 3),
    "mean + 3 std (plain)": lambda s: float(s.mean() + 3 * s.std()),
    "mean + 3 std, iterative clipping": clipped,
    "percentile:99": lambda s: float(np.percentile(s, 99)),
    "percentile:99.5": lambda s: float(np.percentile(s, 99.5)),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/thresholds.md")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    clicks, labels = generate(Scenario())
    w = windows_from_frame(clicks, end="2020-07-15 23:50")
    y = labels["is_anomaly"].to_numpy()
    scores = {"rcf-batch": BatchRCFDetector().score(w), "rcf-streaming": StreamingRCFDetector().score(w)[0]}
    rows = []
    for rule, fn in RULES.items():
        for name, sc in scores.items():
            active = sc > 0
            t = fn(sc[active])
            flagged = active & (sc >= t)
            rows.append([rule, name, f"{t:.2f}", int((flagged & (y == 0)).sum()), int((flagged & (y == 1)).sum())])
    text = markdown_table(["rule", "detector", "threshold", "false windows", "true windows (of 8)"], rows)
    print(text)
    if args.markdown:
        write_markdown("thresholds", text, argv=argv, seconds=time.perf_counter() - t_start)


if __name__ == "__main__":
    main()
