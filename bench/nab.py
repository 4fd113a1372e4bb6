"""NAB benchmark: our RCFs beside scikit-learn IsolationForest, rrcf and krcf (AWS Rust RCF) on the NAB subset
in ``data/nab`` (36 files, 4 categories), all in this one run. Prints Markdown tables; ``--markdown`` also
writes them to ``docs/benchmarks/nab.md``.

Run: ``.venv/bin/python bench/nab.py`` (about 7 minutes on 2 shared cores, mostly rrcf; ``--quick``: smoke run).

Every detector sees the same input: the file's ``value`` column z-scored with the mean and standard deviation
of the file's probationary period only (first ``min(15%, 750)`` rows). Streaming detectors score each row and
then learn it; batch ones are fitted on the probationary rows (shingled when ``shingle > 1``) and score every
row. Raw scores of every detector go to [0, 1] the same way, causally, per file: the score of row ``t``
becomes its mid-rank among the raw scores of rows ``0 .. t-1`` of that file (fraction of earlier scores
below it, ties counting half; a new maximum maps to 1). Then:

* ROC AUC per category: positives are the rows inside a NAB window, rows of the probationary period are
  left out, rows of the category's files are pooled;
* NAB scores (standard, reward_low_FP, reward_low_FN) with one threshold per detector and profile tuned on
  the whole corpus (``bench/nab_scoring.py``).
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import krcf  # noqa: E402
import rrcf  # noqa: E402
from nab_scoring import PROFILES, LabelledFile, load_corpus, sweep  # noqa: E402
from report import write_markdown  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from clickstream_anomaly.baseline import TimeAwareBaseline  # noqa: E402
from clickstream_anomaly.detectors import DEFAULT_DETECTORS, ContextRCFDetector  # noqa: E402
from clickstream_anomaly.rcf import RandomCutForest, StreamingRCF  # noqa: E402
from clickstream_anomaly.windowspec import WindowSpec  # noqa: E402

DEFAULT_STREAMING = DEFAULT_DETECTORS[0]  # the default streaming detector: the time-aware baseline

DATA = ROOT / "data" / "nab"
TREES, SAMPLE = 100, 256

#: (z (n,), probation rows, seed, timestamps (n,) datetime64[ns]) -> raw scores (n,)
Detector = Callable[[np.ndarray, int, int, np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------------------------- inputs


def scale(values: np.ndarray, probation: int) -> np.ndarray:
    """z-score ``values`` with the mean and standard deviation of ``values[:probation]`` (std 0 -> 1)."""
    head = values[:probation]
    sd = float(head.std())
    return (values - float(head.mean())) / (sd if sd > 0 else 1.0)


def shingles(z: np.ndarray, s: int) -> np.ndarray:
    """``(n - s + 1, s)`` rows ``z[t-s+1 .. t]`` (oldest first) for ``t = s-1 .. n-1``."""
    return np.lib.stride_tricks.sliding_window_view(z, s).copy()


def pad_front(scores: np.ndarray, n: int) -> np.ndarray:
    """Scores of the shingles put back on rows: the first ``n - len(scores)`` rows (no full shingle) get 0."""
    out = np.zeros(n)
    out[n - len(scores) :] = scores
    return out


def causal_rank(raw: np.ndarray) -> np.ndarray:
    """``(n,)`` in [0, 1]: mid-rank of ``raw[t]`` among ``raw[:t]`` (0 for the first row)."""
    seen: list[float] = []
    out = np.zeros(len(raw))
    for t, x in enumerate(raw.tolist()):
        if t:
            lo = bisect.bisect_left(seen, x)
            hi = bisect.bisect_right(seen, x, lo)
            out[t] = (lo + 0.5 * (hi - lo)) / t
        bisect.insort(seen, x)
    return out


# ---------------------------------------------------------------------------------------------- detectors


def ours_streaming(s: int) -> Detector:
    def run(z: np.ndarray, probation: int, seed: int, ts: np.ndarray) -> np.ndarray:
        return StreamingRCF(
            dimensions=1, num_trees=TREES, sample_size=SAMPLE, shingle_size=s, random_state=seed
        ).process_scores(z[:, None])

    return run


def ours_batch(s: int) -> Detector:
    def run(z: np.ndarray, probation: int, seed: int, ts: np.ndarray) -> np.ndarray:
        X = shingles(z, s)
        forest = RandomCutForest(num_trees=TREES, num_samples_per_tree=SAMPLE, random_state=seed).fit(
            X[: probation - s + 1]
        )
        return pad_front(forest.score(X), len(z))

    return run


def isolation_forest(s: int) -> Detector:
    def run(z: np.ndarray, probation: int, seed: int, ts: np.ndarray) -> np.ndarray:
        X = shingles(z, s)
        train = X[: probation - s + 1]
        forest = IsolationForest(n_estimators=TREES, max_samples=min(SAMPLE, len(train)), random_state=seed)
        forest.fit(train)
        return pad_front(-forest.score_samples(X), len(z))

    return run


def krcf_streaming(s: int) -> Detector:
    """krcf score-then-update on externally built shingles (krcf's internal shingling is not used)."""

    def run(z: np.ndarray, probation: int, seed: int, ts: np.ndarray) -> np.ndarray:
        f = krcf.RandomCutForest(
            {
                "dimensions": s,
                "shingle_size": 1,
                "num_trees": TREES,
                "sample_size": SAMPLE,
                "random_seed": seed,
                "output_after": SAMPLE // 4,
            }
        )
        X = shingles(z, s).tolist()
        out = np.empty(len(X))
        for i, x in enumerate(X):
            out[i] = f.score(x)
            f.update(x)
        return pad_front(out, len(z))

    return run


def rrcf_streaming(s: int, trees: int, size: int) -> Detector:
    """rrcf as in its README: every tree keeps the last ``size`` shingles (FIFO); insert, then CoDisp."""

    def run(z: np.ndarray, probation: int, seed: int, ts: np.ndarray) -> np.ndarray:
        np.random.seed(seed)  # rrcf draws its cuts from numpy's global generator
        forest = [rrcf.RCTree() for _ in range(trees)]
        X = shingles(z, s)
        out = np.empty(len(X))
        for i, x in enumerate(X):
            total = 0.0
            for tree in forest:
                if len(tree.leaves) >= size:
                    tree.forget_point(i - size)
                tree.insert_point(x, index=i)
                total += tree.codisp(i)
            out[i] = total / trees
        return pad_front(out, len(z))

    return run


def _frame(z: np.ndarray, ts: np.ndarray) -> pd.DataFrame:
    """The series as a windows frame (``window_start``, ``value``) with strictly increasing starts: NAB has
    repeated timestamps (a tie moves 1 µs after the one before it)."""
    t = ts.astype("datetime64[ns]").astype("int64")
    for i in range(1, len(t)):
        if t[i] <= t[i - 1]:
            t[i] = t[i - 1] + 1000
    return pd.DataFrame({"window_start": pd.to_datetime(t, utc=True), "value": z})


def baseline(**options: object) -> Detector:
    """The time-aware baseline on the value (real-valued, a *generic* column: flat competitor, scored by the
    novelty of its deviation; ``clickstream_anomaly.baseline.generic``): its score in threshold units."""

    def run(z: np.ndarray, probation: int, seed: int, ts: np.ndarray) -> np.ndarray:
        frame = _frame(z, ts)
        spec = WindowSpec.of(frame)
        model = TimeAwareBaseline(columns=("value",), count_columns=(), window=spec.freq, **options)
        return model.fit(None).process(frame).column_score[:, 0]

    return run


def rcf_context(context: str) -> Detector:
    """The streaming RCF with time context on the value (``time``: value + local hour; ``baseline``: the
    baseline's deviation)."""

    def run(z: np.ndarray, probation: int, seed: int, ts: np.ndarray) -> np.ndarray:
        frame = _frame(z, ts)
        det = ContextRCFDetector(context=context, columns=("value",), random_state=seed)
        return det.score(frame)[0]

    return run


def registry(sizes: list[int], args: argparse.Namespace) -> dict[str, Detector]:
    """Every detector of the bench by name (``name@s`` for shingle size ``s`` > 1)."""
    out: dict[str, Detector] = {
        DEFAULT_STREAMING: baseline(),
        **{f"{DEFAULT_STREAMING}-neighbours{k}": baseline(novelty_neighbours=k) for k in (3, 6, 10)},
        "rcf-context": rcf_context("time"),
        "rcf-deviation": rcf_context("baseline"),
    }
    for name, make in (
        ("rcf-streaming", ours_streaming),
        ("rcf-batch", ours_batch),
        ("krcf", krcf_streaming),
        ("isolation-forest", isolation_forest),
    ):
        for s in sizes:
            out[name if s == 1 else f"{name}@{s}"] = make(s)
    if not args.no_rrcf:
        out[f"rrcf@{args.rrcf_shingle}"] = rrcf_streaming(args.rrcf_shingle, args.rrcf_trees, args.rrcf_size)
    return out


def select(available: dict[str, Detector], spec: str | None) -> dict[str, Detector]:
    """The detectors named in ``spec`` (comma-separated; ``default`` = the default streaming detector)."""
    if not spec:
        return available
    names = [DEFAULT_STREAMING if n.strip() == "default" else n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown detector(s) {unknown}; known: default, {', '.join(available)}")
    return {n: available[n] for n in dict.fromkeys(names)}


# ---------------------------------------------------------------------------------------------- tables


def table(headers: list[str], rows: list[list[object]]) -> str:
    def fmt(x: object) -> str:
        return f"{x:.3f}" if isinstance(x, float) else str(x)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def category_auc(files: list[LabelledFile], scores: list[np.ndarray], category: str | None) -> float:
    ys, ss = [], []
    for f, s in zip(files, scores, strict=True):
        if category is None or f.category == category:
            ys.append(f.in_window()[f.probation :])
            ss.append(s[f.probation :])
    y = np.concatenate(ys)
    return float(roc_auc_score(y, np.concatenate(ss))) if 0 < y.sum() < len(y) else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="NAB folder with data/ and labels/")
    ap.add_argument("--shingles", default="4,8", help="small shingle sizes tried beside 1 (comma-separated)")
    ap.add_argument("--rrcf-shingle", type=int, default=4, help="shingle size of the (single) rrcf run")
    ap.add_argument("--rrcf-trees", type=int, default=10, help="rrcf forest size (subsampled: rrcf is slow)")
    ap.add_argument("--rrcf-size", type=int, default=256, help="rrcf points per tree (FIFO)")
    ap.add_argument("--no-rrcf", action="store_true", help="leave rrcf out (for quick seed-spread runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="every 6th file, rrcf 2 trees (smoke run)")
    ap.add_argument(
        "--detectors",
        default=None,
        help="comma-separated detectors (default: all); 'default' is the default streaming detector "
        f"({DEFAULT_STREAMING}); shingle variants are name@s, e.g. rcf-streaming@4",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the NAB scores as JSON to this file")
    ap.add_argument("--markdown", action="store_true", help="also write the tables to docs/benchmarks/nab.md")
    args = ap.parse_args(argv)

    corpus = load_corpus(args.data)
    if args.quick:
        corpus = corpus[::6]
        args.rrcf_trees = 2
    files = [f for f, _ in corpus]
    z_all = [scale(df["value"].to_numpy(dtype=float), f.probation) for f, df in corpus]
    ts_all = [pd.to_datetime(df["timestamp"]).to_numpy(dtype="datetime64[ns]") for _, df in corpus]
    sizes = [1] + [int(x) for x in args.shingles.split(",") if x.strip() and int(x) > 1]
    detectors = select(registry(sizes, args), args.detectors)
    StreamingRCF(dimensions=1, num_trees=2, sample_size=8, random_state=0).process_scores(
        np.zeros((20, 1))
    )  # numba compile outside timings
    RandomCutForest(num_trees=2, num_samples_per_tree=8, random_state=0).fit(np.zeros((20, 1))).score(np.zeros((3, 1)))

    t_start = time.perf_counter()
    categories = sorted({f.category for f in files})
    auc_rows, nab_rows, time_rows = [], [], []
    nab_json: dict[str, dict[str, float]] = {}
    for name, det in detectors.items():
        t0 = time.perf_counter()
        raw = [det(z, f.probation, args.seed, t) for f, z, t in zip(files, z_all, ts_all, strict=True)]
        seconds = time.perf_counter() - t0
        scores = [causal_rank(r) for r in raw]
        auc_rows.append(
            [name, *[category_auc(files, scores, c) for c in categories], category_auc(files, scores, None)]
        )
        results = {p: sweep(files, scores, prof) for p, prof in PROFILES.items()}
        std = results["standard"]
        nab_json[name] = {p: round(r.score, 2) for p, r in results.items()}
        nab_rows.append(
            [
                name,
                *[f"{r.score:.1f}" for r in results.values()],
                f"{std.detected_windows}/{std.windows}",
                std.false_positives,
                f"{std.threshold:.4f}",
            ]
        )
        rows = sum(f.n_rows for f in files)
        time_rows.append([name, f"{seconds:.1f}", f"{rows / seconds:,.0f}"])
        print(f"[{time.perf_counter() - t_start:6.0f} s] {name}: standard {std.score:.1f}", file=sys.stderr, flush=True)

    n_rows = sum(f.n_rows for f in files)
    n_win = sum(len(f.windows) for f in files)
    text = "\n".join(
        [
            f"### NAB subset: {len(files)} files, {n_rows:,} rows, {n_win} windows "
            f"(seed {args.seed}, {TREES} trees x {SAMPLE} unless noted)\n",
            "#### ROC AUC per category (rows in a NAB window = positive; probationary rows left out)\n",
            table(["detector", *categories, "all"], auc_rows),
            "\n#### NAB score (null = 0, perfect = 100; one threshold per detector and profile, tuned on the corpus)\n",
            table(
                ["detector", *PROFILES, "windows hit (standard)", "FP rows (standard)", "threshold (standard)"],
                nab_rows,
            ),
            "\n#### Scoring time (raw scores of all files, before rank mapping)\n",
            table(["detector", "seconds", "rows/s"], time_rows),
        ]
    )
    print(text)
    print(f"\nTotal {time.perf_counter() - t_start:.0f} s.")
    if args.markdown:
        write_markdown("nab", text, argv=argv, seconds=time.perf_counter() - t_start)
    if args.json is not None:
        payload = {"default": DEFAULT_STREAMING, "detectors": nab_json}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
