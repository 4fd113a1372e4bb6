"""Agreement with AWS's own RCF (the Rust library via the ``krcf`` binding): same stream, same parameters,
Spearman correlation of the 5-seed mean scores >= 0.95."""

from __future__ import annotations

import krcf  # dev dependency: the AWS Rust RCF
import numpy as np
from scipy import stats

from clickstream_anomaly.rcf import StreamingRCF

TREES, SAMPLE, N, WARM = 50, 128, 1200, 200


def _stream() -> np.ndarray:
    rng = np.random.default_rng(42)
    t = np.arange(N)
    X = np.c_[np.sin(2 * np.pi * t / 100), np.cos(2 * np.pi * t / 100), 0.01 * t / 12]
    X += rng.normal(0, 0.2, X.shape)
    idx = rng.choice(np.arange(WARM, N), 30, replace=False)
    X[idx] += rng.normal(0, 3, (30, 3))
    return (X - X.mean(0)) / X.std(0)


def _krcf_scores(X: np.ndarray, seed: int) -> np.ndarray:
    forest = krcf.RandomCutForest(
        {
            "dimensions": X.shape[1],
            "shingle_size": 1,
            "num_trees": TREES,
            "sample_size": SAMPLE,
            "random_seed": seed,
            "output_after": SAMPLE // 4,
        }
    )
    out = np.empty(len(X))
    for i, x in enumerate(X.tolist()):
        out[i] = forest.score(x)
        forest.update(x)
    return out


def test_scores_agree_with_aws_rust_rcf() -> None:
    X = _stream()
    ours = np.mean(
        [
            StreamingRCF(dimensions=3, num_trees=TREES, sample_size=SAMPLE, random_state=s).process_scores(X)
            for s in range(5)
        ],
        axis=0,
    )
    theirs = np.mean([_krcf_scores(X, s) for s in range(5)], axis=0)
    rho = stats.spearmanr(ours[WARM:], theirs[WARM:])[0]
    assert rho >= 0.95, rho
    # same scale, not only the same ranking
    assert abs(np.median(ours[WARM:]) - np.median(theirs[WARM:])) < 0.1
