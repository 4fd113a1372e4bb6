"""Which residual feature makes the incidents stand out: ``clicks - users`` against the project's
``clicks - users * R`` (R = trailing-day median clicks per user), same data, same forests, one run.

Prints ROC AUC of batch RCF (robust-scaled, 100 trees x 512) and streaming RCF (KDA semantics, blog
parameters) on the demo scenario, and how many normal windows score at least as high as the weakest
labelled anomaly. Run: ``.venv/bin/python bench/residual.py [--markdown]``
(``--markdown`` also writes the table to ``docs/benchmarks/residual.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_markdown

from clickstream_anomaly.features import windows_from_frame
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.kda import KdaRcfParameters, KdaRcfStream
from clickstream_anomaly.rcf import RandomCutForest
from clickstream_anomaly.records import FEATURE_COLUMNS
from clickstream_anomaly.scaling import Scaling


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/residual.md")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    clicks, labels = generate(Scenario())
    w = windows_from_frame(clicks, end="2020-07-15 23:50")
    y = labels["is_anomaly"].to_numpy()
    rows = []
    for name, res in (
        ("clicks − users", (w["clicks"] - w["users"]).to_numpy(float)),
        ("clicks − users × R (ours)", w["residual"].to_numpy(float)),
    ):
        frame = w.assign(residual=res)
        z = Scaling.fit(frame).apply(frame)
        batch = RandomCutForest(num_trees=100, num_samples_per_tree=512, random_state=0).fit(z).score(z)
        stream = KdaRcfStream(list(FEATURE_COLUMNS), KdaRcfParameters(100, 256, 4320, 1, True), random_state=0)
        raw = frame[list(FEATURE_COLUMNS)].to_numpy(float)
        sc = np.array([stream.process_row(x)[0] for x in raw])
        m = sc > 0  # KDA's warm-up scores 0
        rows.append(
            [
                name,
                f"{roc_auc_score(y, batch):.4f}",
                int((batch[y == 0] >= batch[y == 1].min()).sum()),
                f"{roc_auc_score(y[m], sc[m]):.4f}",
                int((sc[(y == 0) & m] >= sc[y == 1].min()).sum()),
            ]
        )
    header = [
        "residual",
        "batch RCF AUC",
        "normal ≥ weakest anomaly (batch)",
        "streaming RCF AUC",
        "normal ≥ weakest anomaly (streaming)",
    ]
    text = markdown_table(header, rows)
    print(text)
    if args.markdown:
        write_markdown("residual", text, argv=argv, seconds=time.perf_counter() - t_start)


if __name__ == "__main__":
    main()
