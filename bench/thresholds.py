"""Threshold rules on the demo's RCF scores: false and true anomalous windows for each rule, one run.

Compares the project's ``sigma:3`` (mean + 3 upper semi-deviations of scores capped at 2x p99) with plain
mean + 3 std, iterative sigma clipping, and two percentiles. Run: ``.venv/bin/python bench/thresholds.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def main() -> None:
    clicks, labels = generate(Scenario())
    w = windows_from_frame(clicks, end="2020-07-15 23:50")
    y = labels["is_anomaly"].to_numpy()
    scores = {"rcf-batch": BatchRCFDetector().score(w), "rcf-streaming": StreamingRCFDetector().score(w)[0]}
    print("| rule | detector | threshold | false windows | true windows (of 8) |")
    print("|---|---|---|---|---|")
    for rule, fn in RULES.items():
        for name, sc in scores.items():
            active = sc > 0
            t = fn(sc[active])
            flagged = active & (sc >= t)
            print(
                f"| {rule} | {name} | {t:.2f} | {int((flagged & (y == 0)).sum())} | {int((flagged & (y == 1)).sum())} |"
            )


if __name__ == "__main__":
    main()
