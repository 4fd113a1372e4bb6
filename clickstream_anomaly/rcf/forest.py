"""Batch Random Cut Forest with SageMaker's semantics: each tree is built on its own uniform sample of the
training data, and :meth:`RandomCutForest.score` returns the AWS anomaly score (expected inverse isolation
depth normalised by ``log2(sample + 1)``, averaged over trees), not rrcf's CoDisp."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import state as _state
from ._kernels import batch_score, build_trees, score_tables, stream_process
from .arrays import ForestArrays
from .validation import as_matrix, fraction, positive_int

_TABLE_BYTES = 16_000_000
_SORT_ROWS = 4096  # score larger batches in space-filling-curve order


def locality_order(X: np.ndarray) -> np.ndarray:
    """A permutation of the rows of ``X`` ``(n, d)`` along a Z-order (Morton) curve over a grid of up to
    256 cells per dimension, so that consecutive rows are close in space. Scoring in this order lets
    neighbouring rows walk the same tree paths (fewer branch mispredictions, warmer caches); the scores
    do not depend on the order."""
    n, d = X.shape
    dims = min(d, 63)
    bits = max(1, min(8, 63 // dims))
    lo = X[:, :dims].min(axis=0)
    span = X[:, :dims].max(axis=0) - lo
    span[span == 0] = 1.0
    cells = ((X[:, :dims] - lo) / span * ((1 << bits) - 1)).astype(np.uint64)
    code = np.zeros(n, dtype=np.uint64)
    one = np.uint64(1)
    for b in range(bits - 1, -1, -1):
        for j in range(dims):
            code = (code << one) | ((cells[:, j] >> np.uint64(b)) & one)
    return np.argsort(code, kind="stable")


class RandomCutForest:
    """Batch RCF: ``fit(X)`` then ``score(X) -> (n,)`` float64 (inliers about 0.7-1, anomalies 1.5-3+).

    Parameters
    ----------
    num_trees, num_samples_per_tree : any positive sizes (SageMaker's own ranges are checked by the
        SageMaker configuration layer). A tree holds ``min(num_samples_per_tree, n)`` points drawn
        without replacement.
    random_state : int, ``numpy.random.SeedSequence`` or None.
    bounding_box_cache_fraction : share of internal nodes whose bounding box is kept (AWS
        ``boundingBoxCacheFraction``, see :class:`.StreamingRCF`); memory and speed only, never scores.
        1.0 by default: a batch forest is built once and scored in bulk, so speed comes first.
    """

    kind = "RandomCutForest"

    def __init__(
        self,
        num_trees: int = 100,
        num_samples_per_tree: int = 256,
        random_state: int | np.random.SeedSequence | None = None,
        bounding_box_cache_fraction: float = 1.0,
    ) -> None:
        self.num_trees = positive_int("num_trees", num_trees)
        self.num_samples_per_tree = positive_int("num_samples_per_tree", num_samples_per_tree)
        if not (random_state is None or isinstance(random_state, int | np.integer | np.random.SeedSequence)):
            raise ValueError(f"random_state must be an int, a SeedSequence or None, got {random_state!r}")
        self.random_state = random_state
        self.bounding_box_cache_fraction = fraction("bounding_box_cache_fraction", bounding_box_cache_fraction)
        self._a: ForestArrays | None = None
        self.n_features_in_: int | None = None

    def fit(self, X: Any) -> RandomCutForest:
        """Build the trees from ``X`` ``(n, d)``; returns ``self``."""
        X = as_matrix(X, None)
        n, d = X.shape
        rs = self.random_state
        ss = rs if isinstance(rs, np.random.SeedSequence) else np.random.SeedSequence(None if rs is None else int(rs))
        sample_ss, tree_ss = ss.spawn(2)
        rng = np.random.default_rng(sample_ss)
        m = min(self.num_samples_per_tree, n)
        samples = np.empty((self.num_trees, m), dtype=np.int64)
        for t in range(self.num_trees):
            samples[t] = rng.choice(n, size=m, replace=False)
        used, inverse = np.unique(samples, return_inverse=True)
        a = ForestArrays.empty(self.num_trees, m, d, tree_ss, self.bounding_box_cache_fraction, store_capacity=1)
        a.pts = np.ascontiguousarray(X[used], dtype=np.float32)
        a.pref = np.zeros(0, dtype=a.pref.dtype)
        a.pfree = np.zeros(0, dtype=a.pfree.dtype)
        a.pmeta[:] = (0, n, n)
        build_trees(inverse.reshape(samples.shape).astype(np.int64), a.pts, a.tmeta, a.tint, a.cval, a.box, a.leaf)
        self._a = a
        self.n_features_in_ = d
        return self

    def _check_fitted(self) -> ForestArrays:
        if self._a is None:
            raise ValueError("RandomCutForest is not fitted: call fit(X) first")
        return self._a

    def score(self, X: Any) -> np.ndarray:
        """AWS anomaly scores ``(n,)`` of the rows of ``X`` (the forest is not changed)."""
        a = self._check_fitted()
        X = as_matrix(X, self.n_features_in_)
        if X.shape[0] >= _SORT_ROWS:
            order = locality_order(X)
            out = np.empty(X.shape[0])
            out[order] = self._score_rows(a, np.ascontiguousarray(X[order]))
            return out
        return self._score_rows(a, X)

    @staticmethod
    def _score_rows(a: ForestArrays, X: np.ndarray) -> np.ndarray:
        out = np.zeros(X.shape[0])
        T, S = a.cval.shape
        # the float64 tables of score_tables are made for at most about 16 MB of trees at a time
        step = max(1, _TABLE_BYTES // (S * (40 + 24 * X.shape[1])))
        for t0 in range(0, T, step):
            t = slice(t0, min(t0 + step, T))
            batch_score(
                X,
                out,
                a.tmeta[t],
                a.leaf[t],
                *score_tables(a.pts, a.tmeta[t], a.tint[t], a.cval[t], a.box[t], a.leaf[t]),
            )
        out /= T
        return out

    def fit_score(self, X: Any) -> np.ndarray:
        return self.fit(X).score(X)

    def attribution(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """DiVectors ``(high, low)``, each ``(n, d)``, of the rows of ``X``; each row sums to its score."""
        a = self._check_fitted()
        X = as_matrix(X, self.n_features_in_)
        n, d = X.shape
        scores = np.zeros(n)
        high = np.zeros((n, d))
        low = np.zeros((n, d))
        stream_process(X, 0.0, 0, True, True, False, scores, high, low, *a.kernel_args())
        return high, low

    def nbytes(self) -> int:
        return self._check_fitted().nbytes()

    # ------------------------------------------------------------------ persistence
    def to_bytes(self) -> bytes:
        a = self._check_fitted()
        rs = self.random_state if isinstance(self.random_state, int | np.integer) else None
        params = {
            "num_trees": self.num_trees,
            "num_samples_per_tree": self.num_samples_per_tree,
            "random_state": None if rs is None else int(rs),
            "bounding_box_cache_fraction": self.bounding_box_cache_fraction,
        }
        return _state.dumps(self.kind, params, a.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> RandomCutForest:
        params, arrays, version = _state.loads(data, cls.kind)
        obj = cls(**params)
        obj._a = (
            ForestArrays.from_v1(arrays, 0.0, obj.bounding_box_cache_fraction)
            if version == 1
            else ForestArrays.from_dict(arrays)
        )
        obj.n_features_in_ = int(obj._a.pts.shape[1])
        return obj

    def save(self, path: str | os.PathLike[str]) -> None:
        _state.save(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RandomCutForest:
        return cls.from_bytes(_state.load(path))

    def __repr__(self) -> str:
        return (
            f"RandomCutForest(num_trees={self.num_trees}, "
            f"num_samples_per_tree={self.num_samples_per_tree}, random_state={self.random_state!r}, "
            f"bounding_box_cache_fraction={self.bounding_box_cache_fraction:g})"
        )
