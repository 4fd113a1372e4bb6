"""Batch Random Cut Forest with SageMaker's semantics: each tree is built on its own uniform sample of the
training data, and the score is the AWS anomaly score (expected inverse isolation depth normalised by
``log2(sample + 1)``, averaged over trees), not rrcf's CoDisp."""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np

from .. import persist
from ..base import BaseEstimator, check_is_fitted
from ..thresholds import DEFAULT_THRESHOLD, ThresholdRule
from ..validation import Interval, as_matrix, as_seed_sequence, float32_values
from . import state as _state
from .arrays import Forest, new_forest
from .boxes import BoxCache
from .executor import build_trees, stream_process
from .nodes import NodeStore
from .outlier import OutlierMixin
from .pointstore import PointStore
from .walks import batch_score, score_tables

_TABLE_BYTES = 16_000_000
_SORT_ROWS = 4096  # score larger batches in space-filling-curve order


def locality_order(X: np.ndarray) -> np.ndarray:
    """A permutation of the rows of ``X`` (ndarray of shape (n_samples, n_features)) along a Z-order
    (Morton) curve over a grid of up to 256 cells per dimension, so that consecutive rows are close in
    space. Scoring in this order lets neighbouring rows walk the same tree paths (fewer branch
    mispredictions, warmer caches); the scores do not depend on the order."""
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


class RandomCutForest(OutlierMixin, BaseEstimator):
    """Batch Random Cut Forest, the local twin of SageMaker's built-in RCF algorithm.

    ``fit(X)`` builds ``num_trees`` trees, each on its own sample of ``min(num_samples_per_tree,
    n_samples)`` rows drawn without replacement; ``score_samples(X)`` returns the AWS anomaly score of each
    row (the forest is not changed).

    Parameters
    ----------
    num_trees : int, default=100
        Number of trees, at least 1 (SageMaker ``num_trees``; its own range is checked by the SageMaker
        configuration layer).
    num_samples_per_tree : int, default=256
        Rows per tree, at least 1 (SageMaker ``num_samples_per_tree``).
    random_state : int, numpy.random.SeedSequence, numpy.random.Generator or None, default=None
        Seed of the samples and the random cuts; the same int gives the same forest.
    bounding_box_cache_fraction : float in [0, 1], default=1.0
        Share of internal nodes whose bounding box is kept (AWS ``boundingBoxCacheFraction``, see
        :class:`.StreamingRCF`); memory and speed only, never scores. A batch forest is built once and
        scored in bulk, so every box is kept by default.
    threshold : str, ThresholdRule or None, default="sigma:3"
        The rule (:mod:`clickstream_anomaly.thresholds`) that sets ``offset_`` from the training scores:
        ``"sigma:K"``, ``"percentile:P"``, ``"value:X"`` or ``"f1"`` (needs labels ``y`` in ``fit``).
        None sets no ``offset_`` and ``fit`` does not score the training data.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns seen in ``fit``.
    max_samples_ : int
        Rows per tree, ``min(num_samples_per_tree, n_samples)``.
    offset_ : float
        The threshold on the score scale: ``threshold`` applied to the training scores. Rows scoring at
        least ``offset_`` are anomalous (``decision_function <= 0``). Absent with ``threshold=None`` and
        in forests loaded from states older than version 3.

    See Also
    --------
    StreamingRCF : the streaming forest (score, then update, with time decay and attribution).

    Notes
    -----
    Inputs are rounded to float32, as AWS's default precision. Scores are on the AWS scale: inliers about
    0.7-1, clear anomalies 1.5-3 and more (higher is more anomalous). Batches of at least 4096 rows are
    scored in a space-filling-curve order, on several threads when numba is installed; the scores do not
    depend on either.

    Examples
    --------
    >>> import numpy as np
    >>> from clickstream_anomaly.rcf import RandomCutForest
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> forest = RandomCutForest(num_trees=50, random_state=0).fit(X)
    >>> forest.score_samples([[0.0, 0.0], [5.0, -5.0]]).round(2)  # higher is more anomalous
    array([0.61, 4.41])
    >>> forest.predict([[0.0, 0.0], [5.0, -5.0]])
    array([ 1, -1])
    >>> high, low = forest.attribution([[5.0, -5.0]])
    >>> bool(high[0, 0] > low[0, 0] and low[0, 1] > high[0, 1])  # above in x, below in y
    True
    """

    kind = "RandomCutForest"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "num_trees": [Interval(Integral, 1, None, closed="left")],
        "num_samples_per_tree": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "bounding_box_cache_fraction": [Interval(Real, 0, 1, closed="both")],
        "threshold": [str, ThresholdRule, None],
    }
    _forest: Forest | None = None

    def __init__(
        self,
        *,
        num_trees: int = 100,
        num_samples_per_tree: int = 256,
        random_state: int | np.random.SeedSequence | np.random.Generator | None = None,
        bounding_box_cache_fraction: float = 1.0,
        threshold: str | ThresholdRule | None = DEFAULT_THRESHOLD,
    ) -> None:
        self.num_trees = num_trees
        self.num_samples_per_tree = num_samples_per_tree
        self.random_state = random_state
        self.bounding_box_cache_fraction = bounding_box_cache_fraction
        self.threshold = threshold

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> Self:
        """Build the trees from ``X`` (array-like of shape (n_samples, n_features)) and set ``offset_``
        from the training scores; ``y`` (0/1 labels of shape (n_samples,)) is used only by the ``f1``
        threshold. Returns ``self``."""
        self._fit(X, y, want_scores=False)
        return self

    def fit_score(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X, y)`` and the training scores ``score_samples(X)`` of shape (n_samples,) (higher is more
        anomalous), scored once."""
        scores = self._fit(X, y, want_scores=True)
        assert scores is not None
        return scores

    def _fit(self, X: Any, y: Any, want_scores: bool) -> np.ndarray | None:
        self._validate_params()
        rule = self._threshold_rule()
        X = as_matrix(X, None, cast=float32_values)
        n, d = X.shape
        sample_ss, tree_ss = as_seed_sequence(self.random_state).spawn(2)
        rng = np.random.default_rng(sample_ss)
        m = min(int(self.num_samples_per_tree), n)
        samples = np.empty((int(self.num_trees), m), dtype=np.int64)
        for t in range(samples.shape[0]):
            samples[t] = rng.choice(n, size=m, replace=False)
        used, inverse = np.unique(samples, return_inverse=True)
        forest = new_forest(samples.shape[0], m, d, tree_ss, float(self.bounding_box_cache_fraction), 1)
        index = forest.store.refs.dtype
        store = PointStore(
            points=np.ascontiguousarray(X[used], dtype=np.float32),
            refs=np.zeros(0, dtype=index),
            free=np.zeros(0, dtype=index),
            n_free=np.zeros(1, dtype=np.int64),
        )
        forest = forest._replace(store=store)
        forest.sampler.seen[0] = forest.sampler.weight_base[0] = n
        build_trees(forest, inverse.reshape(samples.shape).astype(np.int64))
        self._forest = forest
        self.n_features_in_ = d
        self.max_samples_ = m
        if rule is None and not want_scores:
            self._set_offset(None, np.empty(0))  # no offset_, so the training rows need no scores
            return None
        scores = self._score_samples(X)
        self._set_offset(rule, scores, y)
        return scores

    # ------------------------------------------------------------------ scoring
    def _fitted_forest(self) -> Forest:
        check_is_fitted(self, "n_features_in_")
        assert self._forest is not None
        return self._forest

    def score_samples(self, X: Any) -> np.ndarray:
        """AWS anomaly scores of the rows of ``X`` (array-like of shape (n_samples, n_features)):
        ndarray of shape (n_samples,), float64; higher is more anomalous. The forest is not changed."""
        self._fitted_forest()
        return self._score_samples(as_matrix(X, self.n_features_in_, cast=float32_values))

    def score(self, X: Any) -> np.ndarray:
        """The same as :meth:`score_samples`."""
        return self.score_samples(X)

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        """:meth:`score_samples` of a checked float32-valued matrix."""
        if X.shape[0] >= _SORT_ROWS:
            order = locality_order(X)
            out = np.empty(X.shape[0])
            out[order] = self._score_rows(np.ascontiguousarray(X[order]))
            return out
        return self._score_rows(X)

    def _score_rows(self, X: np.ndarray) -> np.ndarray:
        forest = self._fitted_forest()
        nodes, boxes, points = forest.nodes, forest.boxes, forest.store.points
        out = np.zeros(X.shape[0])
        T, S = nodes.cut_value.shape
        # the float64 tables of score_tables are made for at most about 16 MB of trees at a time
        step = max(1, _TABLE_BYTES // (S * (40 + 24 * X.shape[1])))
        for t0 in range(0, T, step):
            trees = slice(t0, min(t0 + step, T))
            part = NodeStore._make(field[trees] for field in nodes)
            batch_score(X, out, score_tables(part, BoxCache._make(field[trees] for field in boxes), points))
        out /= T
        return out

    def attribution(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """DiVectors ``(high, low)`` of the rows of ``X`` (array-like of shape (n_samples, n_features)), each
        ndarray of shape (n_samples, n_features): ``high[r, i]`` is the part of row ``r``'s score explained
        by the row lying above the sample in dimension ``i``, ``low[r, i]`` below it. Each row's total
        equals its score."""
        forest = self._fitted_forest()
        X = as_matrix(X, self.n_features_in_, cast=float32_values)
        n, d = X.shape
        scores = np.zeros(n)
        high = np.zeros((n, d))
        low = np.zeros((n, d))
        stream_process(forest, X, 0.0, 0, True, True, False, scores, high, low)
        return high, low

    def nbytes(self) -> int:
        """Memory held by the model's arrays, in bytes."""
        return self._fitted_forest().nbytes()

    # ------------------------------------------------------------------ persistence
    def _fitted_values(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_features_in_": int(self.n_features_in_), "max_samples_": int(self.max_samples_)}
        if getattr(self, "offset_", None) is not None:
            out["offset_"] = float(self.offset_)
        return out

    def to_bytes(self) -> bytes:
        """The fitted model as bytes (a :mod:`clickstream_anomaly.persist` state, version 3)."""
        forest = self._fitted_forest()
        return _state.dumps(
            self.kind, _state.jsonable_params(self.get_params(deep=False)), self._fitted_values(), forest
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RandomCutForest:
        """A model written by :meth:`to_bytes` (or a version 1/2 ``.npz`` state); it scores as the original."""
        saved = _state.loads(data, cls.kind, cls().get_params(deep=False))
        obj = cls(**saved.params)
        obj._validate_params()
        obj._forest = saved.forest
        obj.n_features_in_ = int(saved.forest.store.points.shape[1])
        obj.max_samples_ = int(saved.forest.nodes.cut_value.shape[1])
        if saved.fitted.get("offset_") is not None:
            obj.offset_ = float(saved.fitted["offset_"])
        return obj

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path`` (atomically)."""
        persist.save(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RandomCutForest:
        """Read a model written by :meth:`save`."""
        return cls.from_bytes(persist.load(path))
