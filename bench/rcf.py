"""Random Cut Forest: speed, memory and detection quality of ours beside rrcf, krcf (AWS Rust RCF) and
scikit-learn IsolationForest, all measured in this one run on this machine. Prints Markdown tables.

Run: ``.venv/bin/python bench/rcf.py`` (about 5-10 minutes on 2 cores; ``--quick`` for a smaller run;
``--repeat N`` runs the streaming tables N times, default 3, and prints each figure's median).
Workload for speed/memory: 100 trees, 256 samples, 4 dimensions, shingle 1, 4 noisy sinusoids; the
one-call-per-point table also times smaller forests, as per-key models may be.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import krcf  # noqa: E402
import numba  # noqa: E402
import rrcf  # noqa: E402
from joblib import parallel_backend  # noqa: E402
from report import write_markdown  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_auc_score  # noqa: E402

from clickstream_anomaly.rcf import COMPILED, RandomCutForest, StreamingRCF  # noqa: E402

TREES, SAMPLE, DIM = 100, 256, 4


def ours_streaming(d: int, seed: int, **kwargs: object) -> StreamingRCF:
    return StreamingRCF(dimensions=d, num_trees=TREES, sample_size=SAMPLE, random_state=seed, **kwargs)


def ours_batch(seed: int) -> RandomCutForest:
    return RandomCutForest(num_trees=TREES, num_samples_per_tree=SAMPLE, random_state=seed)


def sinusoids(n: int, d: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return np.sin(2 * np.pi * t / 200 + np.arange(d)) * 10 + rng.normal(0, 1, (n, d))


def rate(n: int, seconds: float) -> float:
    return n / seconds


def table(headers: list[str], rows: list[list[object]]) -> str:
    def fmt(x: object) -> str:
        if isinstance(x, float):
            if x != x:  # NaN: no peer measured this operation
                return "-"
            return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
        return str(x)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def krcf_forest(d: int, seed: int, trees: int = TREES, sample: int = SAMPLE, shingle: int = 1) -> object:
    return krcf.RandomCutForest(
        {
            "dimensions": d * shingle,
            "shingle_size": shingle,
            "num_trees": trees,
            "sample_size": sample,
            "random_seed": seed,
            "output_after": sample // 4,
            "internal_shingling": shingle > 1,
        }
    )


# ---------------------------------------------------------------------------------------------- speed


def krcf_rates(warm: np.ndarray, timed: np.ndarray) -> dict[str, float]:
    """krcf points/s for each combination of operations per point, trees full before timing."""
    lists = timed.tolist()
    res = {}
    for name, ops in [
        ("score + attribution + update", ("score", "attribution", "update")),
        ("score + update", ("score", "update")),
        ("attribution + update", ("attribution", "update")),
        ("update only", ("update",)),
    ]:
        f = krcf_forest(DIM, 1)
        for x in warm.tolist():
            f.update(x)
        fns = [getattr(f, o) for o in ops]
        t0 = time.perf_counter()
        for x in lists:
            for fn in fns:
                fn(x)
        res[name] = rate(len(lists), time.perf_counter() - t0)
    return res


def rrcf_rate(warm: np.ndarray, timed: np.ndarray) -> float:
    """rrcf README streaming: every tree holds the same FIFO window of SAMPLE points."""
    forest = [rrcf.RCTree() for _ in range(TREES)]
    for i, x in enumerate(warm[:SAMPLE]):
        for tree in forest:
            tree.insert_point(x, index=i)
    t0 = time.perf_counter()
    for j, x in enumerate(timed):
        i = SAMPLE + j
        for tree in forest:
            tree.forget_point(i - SAMPLE)
            tree.insert_point(x, index=i)
            tree.codisp(i)
    return rate(len(timed), time.perf_counter() - t0)


def one_call_per_point(m: StreamingRCF, timed: np.ndarray) -> None:
    """score(), attribution() and update() of each point, one call each (as a per-key model does)."""
    for x in timed:
        m.score(x)
        m.attribution(x)
        m.update(x)


def one_row_per_call(m: StreamingRCF, timed: np.ndarray) -> None:
    """process() of one row per call (score + attribution + update: the KDA stream's process_row)."""
    for x in timed:
        m.process(x[None, :])


def bench_streaming_once(warm: np.ndarray, timed: np.ndarray, n_rrcf: int) -> list[list[object]]:
    n_time = len(timed)

    def ours_rate(run: Callable[[StreamingRCF], object], fraction: float = 0.3) -> float:
        m = ours_streaming(DIM, 1, bounding_box_cache_fraction=fraction)
        m.process(warm)
        t0 = time.perf_counter()
        run(m)
        return rate(n_time, time.perf_counter() - t0)

    ours = {
        "ours process() (score + attribution + update, rows in one call)": (
            ours_rate(lambda m: m.process(timed)),
            "score + attribution + update",
        ),
        "ours process(), full box cache (bounding_box_cache_fraction=1)": (
            ours_rate(lambda m: m.process(timed), 1.0),
            "score + attribution + update",
        ),
        "ours score() + attribution() + update(), one call each per point": (
            ours_rate(lambda m: one_call_per_point(m, timed)),
            "score + attribution + update",
        ),
        "ours process() of one row per call (score + attribution + update)": (
            ours_rate(lambda m: one_row_per_call(m, timed)),
            "score + attribution + update",
        ),
        "ours process_scores() (score + update)": (ours_rate(lambda m: m.process_scores(timed)), "score + update"),
        "ours update() per point": (ours_rate(lambda m: [m.update(x) for x in timed]), "update only"),
    }
    res = krcf_rates(warm, timed)
    rr = rrcf_rate(warm, timed[:n_rrcf])
    rows: list[list[object]] = [[name, r, r / res[peer], r / rr] for name, (r, peer) in ours.items()]
    rows[-1][-1] = float("nan")
    rows += [[f"krcf {name}", r, 1.0, r / rr] for name, r in res.items()]
    rows.append(["rrcf forget + insert + codisp (FIFO window)", rr, rr / res["score + attribution + update"], 1.0])
    return rows


def compile_point_kernels(warm: np.ndarray) -> None:
    """Compile (or load) every kernel signature the timed loops use, before timing."""
    m = ours_streaming(DIM, 0)
    m.process(warm[:300])
    m.process_scores(warm[300:302])
    m.score(warm[0])
    m.attribution(warm[0])
    m.update(warm[0])
    m.process(warm[:1])


def median_rows(runs: list[list[list[object]]]) -> list[list[object]]:
    """Each numeric cell's median over repeated runs of the same table (each ratio is taken within its
    run, then the median over runs)."""
    out = []
    for cells in zip(*runs, strict=True):
        row: list[object] = [cells[0][0]]
        for column in zip(*(c[1:] for c in cells), strict=True):
            values = [float(v) for v in column if isinstance(v, float | int)]
            row.append(float(np.median(values)) if len(values) == len(column) else column[0])
        out.append(row)
    return out


def bench_streaming(n_warm: int, n_time: int, n_rrcf: int, repeats: int) -> list[list[object]]:
    X = sinusoids(n_warm + n_time)
    warm, timed = X[:n_warm], X[n_warm:]
    compile_point_kernels(warm)
    return median_rows([bench_streaming_once(warm, timed, n_rrcf) for _ in range(repeats)])


POINT_FORESTS = [(100, 256, 4), (50, 128, 3), (30, 64, 2), (10, 32, 1)]  # trees, samples, dimensions


def krcf_one_call_per_point(f: Any, lists: list[list[float]]) -> None:
    """krcf's score, attribution and update of each point, one call each."""
    for x in lists:
        f.score(x)
        f.attribution(x)
        f.update(x)


def bench_point_sizes(n_time: int, repeats: int, block: int = 250) -> list[list[object]]:
    """One call per point against krcf (score + attribution + update, one call each) for forests from the
    default size down to small per-key models; each forest full (3 000 points) before timing. The three
    take turns on blocks of ``block`` points, so that a change of the machine's load hits all three."""
    runs = []
    for _ in range(repeats):
        rows: list[list[object]] = []
        for trees, sample, d in POINT_FORESTS:
            X = sinusoids(3000 + n_time, d)
            warm, timed = X[:3000], X[3000:]
            models = [StreamingRCF(dimensions=d, num_trees=trees, sample_size=sample, random_state=1) for _ in "ab"]
            for m in models:
                m.process(warm)
            f = krcf_forest(d, 1, trees, sample)
            for x in warm.tolist():
                f.update(x)
            spent = [0.0, 0.0, 0.0]
            for start in range(0, n_time, block):
                part = timed[start : start + block]
                lists = part.tolist()
                turns: list[tuple[Callable[[Any, Any], None], Any, Any]] = [
                    (one_call_per_point, models[0], part),
                    (one_row_per_call, models[1], part),
                    (krcf_one_call_per_point, f, lists),
                ]
                for j, (run, model, points) in enumerate(turns):
                    t0 = time.perf_counter()
                    run(model, points)
                    spent[j] += time.perf_counter() - t0
            three, row, k = (rate(n_time, t) for t in spent)
            rows.append([f"{trees} trees x {sample}, d = {d}", three, three / k, row, row / k, k])
        runs.append(rows)
    return median_rows(runs)


FALLBACK = """
import time, numpy as np, sys
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from clickstream_anomaly.rcf import COMPILED, StreamingRCF
X = np.sin(np.arange(700)[:, None] / 30 + np.arange(4)) * 10
m = StreamingRCF(dimensions=4, num_trees=100, sample_size=256, random_state=1)
m.process(X[:2])
t1 = time.perf_counter()
m.process(X[2:500])
t2 = time.perf_counter()
m.process(X[500:700])
t3 = time.perf_counter()
print(COMPILED, t1 - t0, 200 / (t3 - t2))
"""


def bench_numba_cost() -> list[list[object]]:
    """Cold compile (empty cache), warm start (cached), and the pure-Python rate (Lambda without numba)."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env.pop("CLICKSTREAM_ANOMALY_NO_NUMBA", None)
        script = FALLBACK.format(root=str(ROOT))
        for label in ("numba, empty cache (first call compiles)", "numba, cached (cache=True)"):
            out = subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            rows.append([label, float(out[1]), float(out[2])])
        env["CLICKSTREAM_ANOMALY_NO_NUMBA"] = "1"
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        rows.append(["pure Python/numpy (CLICKSTREAM_ANOMALY_NO_NUMBA=1, as in Lambda)", float(out[1]), float(out[2])])
    return rows


def package_size_mb(*names: str) -> float:
    import importlib.util

    total = 0
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        for p in Path(spec.origin).parent.rglob("*"):
            if p.is_file():
                total += p.stat().st_size
    return total / 1e6


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_batch(n_big: int) -> list[list[object]]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 3))
    ours_batch(0).fit(X[:500]).score_samples(X[:10])  # compile outside the timing
    ours = best_of(lambda: ours_batch(0).fit_score(X))
    iso = best_of(
        lambda: IsolationForest(n_estimators=TREES, max_samples=SAMPLE, random_state=0).fit(X).score_samples(X)
    )

    def rrcf_batch() -> None:
        n = len(X)
        idx = rng.choice(n, size=(n // SAMPLE, SAMPLE), replace=False)
        trees = [rrcf.RCTree(X[ix], index_labels=ix) for ix in idx]
        for tree in trees:
            [tree.codisp(leaf) for leaf in tree.leaves]

    rr = best_of(rrcf_batch, 1)
    # fit() also scores the training rows for offset_; fit_score() returns those scores (one pass)
    twice = best_of(lambda: ours_batch(0).fit(X).score_samples(X))
    rows = [
        ["fit_score 5 000 x 3 (s)", ours, iso, ours / iso, rr],
        ["fit then score_samples 5 000 x 3 (s)", twice, iso, twice / iso, rr],
    ]
    Y = rng.normal(size=(n_big, DIM))

    def iso_big(jobs: int) -> float:
        def run() -> None:
            m = IsolationForest(n_estimators=TREES, max_samples=SAMPLE, random_state=0, n_jobs=jobs).fit(Y)
            with parallel_backend("threading", n_jobs=jobs):  # sklearn's documented way to score in parallel
                m.score_samples(Y)

        return best_of(run, 2)

    threads = numba.get_num_threads() if COMPILED else 1
    for n_threads in sorted({1, threads}):
        if COMPILED:
            numba.set_num_threads(n_threads)
        ours_big = best_of(lambda: ours_batch(0).fit_score(Y), 2)
        iso = iso_big(n_threads)
        rows.append([f"fit + score {n_big:,} x 4, {n_threads} thread(s) each (s)", ours_big, iso, ours_big / iso, "-"])
    if COMPILED:
        numba.set_num_threads(threads)
    return rows


KRCF_RSS = """
import gc, os, numpy as np, krcf
def rss():  # resident set size in bytes (Linux /proc)
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
X = (np.sin(np.arange(N_POINTS)[:, None] / 30 + np.arange(4)) * 10).tolist()
gc.collect()
before = rss()
keep = []
for s in range(N_FORESTS):
    f = krcf.RandomCutForest({"dimensions": 4, "shingle_size": 1, "num_trees": 100, "sample_size": 256,
                              "random_seed": s, "output_after": 64})
    for x in X:
        f.update(x)
    keep.append(f)
print((rss() - before) / N_FORESTS / 1e6)
"""


def bench_memory(n_long: int) -> list[list[object]]:
    """Model memory once the trees are full (3 000 points) and on a long stream (``n_long`` points, when the
    shared point store has reached its steady size)."""
    X = sinusoids(n_long)
    rows: list[list[object]] = []
    for fraction in (0.3, 1.0):
        m = ours_streaming(DIM, 1, bounding_box_cache_fraction=fraction)
        m.process(X[:3000])
        at_3k = m.nbytes()
        gc.collect()
        tracemalloc.start()
        m.process(X[3000:])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        label = "default, box cache 0.3" if fraction < 1 else "full box cache"
        rows.append(
            [
                f"ours StreamingRCF ({label}) after {n_long:,} points",
                m.nbytes() / 1e6,
                f"numpy arrays ({at_3k / 1e6:.2f} MB after 3 000 points); saved state "
                f"{len(m.to_bytes()) / 1e6:.2f} MB; tracemalloc peak while processing {peak / 1e6:.2f} MB",
            ]
        )
    n_k, forests = 5000, 10
    code = KRCF_RSS.replace("N_POINTS", str(n_k)).replace("N_FORESTS", str(forests))
    krcf_mb = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    rows.append(
        [
            "krcf (AWS Rust)",
            krcf_mb,
            f"RSS growth over {forests} forests fed {n_k:,} points each / {forests} (fresh process)",
        ]
    )
    # rrcf: 10 trees x 256 (FIFO-filled), scaled x10 to 100 trees
    gc.collect()
    tracemalloc.start()
    forest = [rrcf.RCTree() for _ in range(10)]
    for i, x in enumerate(X[:SAMPLE]):
        for tree in forest:
            tree.insert_point(x, index=i)
    rr_cur, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows.append(["rrcf", rr_cur * 10 / 1e6, "tracemalloc of 10 FIFO-filled trees x 10"])
    return rows


def server_metrics(seed: int = 42, n: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The notebook-style server metrics (rcf-algorithm.md section 1c): 5-minute steps; cpu follows the hour
    of day, memory drifts up, requests follow the noise-free cpu pattern. 100 labelled anomalies: 39 spikes
    (cpu and memory up), 31 drops (requests down to 10-30 %), 30 outliers (cpu up with memory up or
    requests down). Returns ``X (n, 3)``, ``labels``, ``kind`` (0 none, 1 spike, 2 drop, 3 outlier),
    ``hour``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    hour = (t * 5 / 60) % 24
    daily = 50 + 20 * np.sin(2 * np.pi * hour / 24 - np.pi / 2)
    cpu = np.clip(daily + rng.normal(0, 5, n), 0, 100)
    mem = 40 + 0.002 * t + rng.normal(0, 3, n)
    req = np.clip((daily - 30) * 100 + rng.normal(0, 200, n), 0, None)
    kind = np.zeros(n, dtype=int)
    idx = rng.choice(np.arange(100, n), 100, replace=False)
    kind[idx[:39]], kind[idx[39:70]], kind[idx[70:]] = 1, 2, 3
    for i in idx[:39]:
        cpu[i] = min(100, cpu[i] + rng.uniform(30, 50))
        mem[i] += rng.uniform(15, 30)
    for i in idx[39:70]:
        req[i] *= rng.uniform(0.1, 0.3)
    for i in idx[70:]:
        cpu[i] = min(100, cpu[i] + rng.uniform(25, 40))
        if rng.random() < 0.5:
            mem[i] += rng.uniform(15, 25)
        else:
            req[i] *= rng.uniform(0.2, 0.5)
    X = np.c_[cpu, mem, req]
    return X, (kind > 0).astype(int), kind, hour


def metrics(scores: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    auc = roc_auc_score(y, scores)
    p, r, _ = precision_recall_curve(y, scores)
    best_f1 = float(np.max(2 * p * r / np.maximum(p + r, 1e-12)))
    flag = scores > np.quantile(scores, 0.98)
    tp = (flag & (y == 1)).sum()
    f1_98 = 2 * tp / max(flag.sum() + y.sum(), 1)
    return auc, best_f1, f1_98


def krcf_scores(X: np.ndarray, seed: int, shingle: int = 1) -> np.ndarray:
    f = krcf_forest(X.shape[1], seed, shingle=shingle)
    out = np.empty(len(X))
    for i, x in enumerate(X.tolist()):
        out[i] = f.score(x)
        f.update(x)
    return out


def rrcf_batch_codisp(X: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(X)
    total = np.zeros(n)
    count = np.zeros(n)
    for _ in range(TREES):
        ix = rng.choice(n, SAMPLE, replace=False)
        tree = rrcf.RCTree(X[ix], index_labels=ix)
        for i in ix:
            total[i] += tree.codisp(i)
            count[i] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def bench_quality(seeds: int, with_rrcf: bool) -> tuple[list[list[object]], list[list[object]], list[list[object]]]:
    X, y, kind, hour = server_metrics()
    Z = (X - X.mean(0)) / X.std(0)
    tod = np.c_[np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)]
    Zt = np.c_[Z, tod]
    # derived feature: requests minus their linear prediction from cpu (a drop breaks that relation)
    coef = np.polyfit(Z[:, 0], Z[:, 2], 1)
    resid = Z[:, 2] - np.polyval(coef, Z[:, 0])
    Zr = np.c_[Z, (resid - resid.mean()) / resid.std()]
    detectors = {
        "IsolationForest (batch)": lambda s: (
            -IsolationForest(n_estimators=TREES, max_samples=SAMPLE, random_state=s).fit(Z).score_samples(Z)
        ),
        "ours RandomCutForest (batch, SageMaker)": lambda s: ours_batch(s).fit_score(Z),
        "ours StreamingRCF (score->update)": lambda s: ours_streaming(3, s).process_scores(Z),
        "krcf (AWS Rust) streaming": lambda s: krcf_scores(Z, s),
    }
    if with_rrcf:
        detectors["rrcf batch (mean CoDisp)"] = lambda s: rrcf_batch_codisp(Z, s)
    variants = {
        "ours streaming, shingle 2": lambda s: ours_streaming(3, s, shingle_size=2).process_scores(Z),
        "ours streaming, shingle 4": lambda s: ours_streaming(3, s, shingle_size=4).process_scores(Z),
        "ours streaming + time of day (sin, cos hour)": lambda s: ours_streaming(5, s).process_scores(Zt),
        "ours batch + time of day": lambda s: ours_batch(s).fit_score(Zt),
        "krcf streaming + time of day": lambda s: krcf_scores(Zt, s),
        "ours streaming + requests-vs-cpu residual": lambda s: ours_streaming(4, s).process_scores(Zr),
        "ours batch + requests-vs-cpu residual": lambda s: ours_batch(s).fit_score(Zr),
    }
    main_rows, kind_rows, var_rows = [], [], []
    for group, rows in ((detectors, main_rows), (variants, var_rows)):
        for name, fn in group.items():
            runs = [fn(s) for s in range(seeds)]
            ms = np.array([metrics(r, y) for r in runs]).mean(axis=0)
            rows.append([name, *[round(float(v), 3) for v in ms]])
            mean_scores = np.mean(runs, axis=0)
            flag = mean_scores > np.quantile(mean_scores, 0.98)
            kind_rows.append([name, *[f"{flag[kind == k].mean():.0%}" for k in (1, 2, 3)]])
    return main_rows, var_rows, kind_rows


SECTIONS = ("streaming", "numba", "batch", "memory", "quality")


def main() -> None:
    """Run the sections asked for; with ``--markdown`` the printed tables also go to docs/benchmarks/rcf.md."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/rcf.md")
    ap.add_argument("--quick", action="store_true", help="smaller workloads (about 2 minutes)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="N",
        help="run the streaming tables N times and print each figure's median (default 3)",
    )
    ap.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)}; default all)",
    )
    args = ap.parse_args()
    t_start = time.perf_counter()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        run_sections(args)
    if args.markdown:
        # headings start at level 3 in the docs page that includes the file
        text = "\n".join(("##" + line) if line.startswith("#") else line for line in buffer.getvalue().splitlines())
        write_markdown("rcf", text, seconds=time.perf_counter() - t_start)


class _Tee(io.TextIOBase):
    """Writes to both streams (the terminal and the buffer for the docs)."""

    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)


def run_sections(args: argparse.Namespace) -> None:
    """Print the tables of the sections in ``args.only``."""
    q = args.quick
    only = set(args.only)
    print(f"# RCF bench (numba compiled: {COMPILED}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f})\n")
    if "streaming" in only:
        print("## Streaming: 100 trees, 256 samples, d = 4, shingle 1 (trees full before timing)\n")
        repeats = max(1, args.repeat)
        median = f"median of {repeats} runs" if repeats > 1 else "one run"
        print(f"Each figure is the {median} (ratios within each run).\n")
        rows = bench_streaming(n_warm=2000, n_time=1000 if q else 3000, n_rrcf=20 if q else 50, repeats=repeats)
        print(table(["implementation / operation", "points/s", "x krcf (same ops)", "x rrcf"], rows))
        print(
            "\n### One call per point by forest size (shingle 1; score + attribution + update per point, "
            f"krcf the same calls, the three taking turns on blocks of 250 points; {median})\n"
        )
        print(
            table(
                [
                    "forest",
                    "ours score() + attribution() + update() points/s",
                    "x krcf",
                    "ours process() of one row points/s",
                    "x krcf",
                    "krcf points/s",
                ],
                bench_point_sizes(1000 if q else 3000, repeats),
            )
        )
    if "numba" in only:
        print("\n## Cost of the compiled kernel\n")
        size = package_size_mb("numba", "llvmlite")
        print(
            f"numba + llvmlite installed size: {size:.0f} MB (not shipped to Lambda; the same source runs "
            "as plain Python there)\n"
        )
        print(table(["mode", "import + first call (s)", "score + attribution + update points/s"], bench_numba_cost()))
    if "batch" in only:
        print("\n## Batch\n")
        print(
            table(
                ["task", "ours (s)", "IsolationForest (s)", "ours / IF", "rrcf (s)"],
                bench_batch(200_000 if q else 1_000_000),
            )
        )
    if "memory" in only:
        print("\n## Memory: 100 trees x 256, d = 4\n")
        print(table(["implementation", "MB", "how measured"], bench_memory(10_000 if q else 30_000)))
    if "quality" in only:
        print(
            "\n## Detection quality: server metrics, 5 000 points, 2 % anomalies, standardised "
            f"(mean over {2 if q else 5} seeds)\n"
        )
        main_rows, var_rows, kind_rows = bench_quality(2 if q else 5, with_rrcf=not q)
        print(table(["detector", "AUC", "best F1", "F1 @ p98"], main_rows))
        print("\n### Context for drops: shingling and time of day\n")
        print(table(["detector", "AUC", "best F1", "F1 @ p98"], var_rows))
        print("\n### Recall at the 98th percentile by anomaly kind (seed-mean scores)\n")
        print(table(["detector", "spike", "drop", "outlier"], kind_rows))


if __name__ == "__main__":
    main()
