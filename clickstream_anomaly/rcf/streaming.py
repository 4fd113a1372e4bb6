"""Streaming Random Cut Forest with AWS semantics (score-then-update, time-decayed samplers, DiVector).

Each of the ``num_trees`` trees keeps its own time-decayed weighted reservoir of ``sample_size`` points
(AWS ``CompactSampler``, :mod:`.sampler`): the point arriving as number ``t`` gets the weight
``-time_decay * t + log(-log u)`` and a tree keeps the ``sample_size`` smallest weights, so a point lives
about ``1 / time_decay`` arrivals on average. The score is AWS's default anomaly score (expected inverse
isolation depth, normalised by ``log2(mass + 1)``, averaged over trees, :mod:`.walks`): inliers about
0.7-1, clear anomalies 1.5-3+. It is 0 until ``output_after`` (shingled) points have been inserted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np

from .. import persist
from ..base import BaseEstimator, NotFittedError
from ..thresholds import DEFAULT_THRESHOLD, ThresholdRule
from ..validation import Interval, as_matrix, as_point, as_seed_sequence, float32_values
from . import state as _state
from .arrays import FlatArrays, Forest, forest_args, new_forest
from .boxes import DEFAULT_BOX_CACHE_FRACTION
from .executor import REFUSED, point_step, stream_process
from .outlier import OutlierMixin
from .workspace import point_workspace

_CHUNK = 256


class _PointPath:
    """The arguments of :func:`.executor.point_step` kept from one call to the next for one forest: its
    arrays and the kernel's scratch space in one flat tuple (typed faster by numba than the named tuples),
    so that a call allocates nothing but its outputs."""

    __slots__ = ("arrays", "forest", "unused")

    def __init__(self, forest: Forest) -> None:
        D = forest.store.points.shape[1]
        self.forest = forest
        self.arrays: FlatArrays = forest_args(forest) + point_workspace(D, forest.nodes.cut_value.shape[1])
        self.unused = np.zeros(D)  # high/low of calls without attribution


class StreamingRCF(OutlierMixin, BaseEstimator):
    """Streaming Random Cut Forest over ``dimensions`` input columns with optional internal shingling,
    the local twin of the AWS streaming RCF (and of Kinesis Data Analytics' ``RANDOM_CUT_FOREST``).

    The stream starts at the first call that sees data (``fit``, ``process``, ``update``, ``score``...):
    the parameters are checked then and the forest is created; ``fit`` starts it afresh.

    * ``process(X)`` / ``process_scores(X)`` / ``update(point)``: the stream, score-then-update row by row.
    * ``fit(X)``: a fresh forest processes ``X`` as a stream (each row scored, then inserted), and
      ``offset_`` is the ``threshold`` rule applied to those scores (the warm-up zeros left out).
    * ``score_samples(X)``: the scores of the rows of ``X`` as a continuation of the stream (their
      shingles built from the stream's last inputs and the rows before them) *without* inserting them;
      ``decision_function`` and ``predict`` build on it.
    * ``score(point)`` / ``attribution(point)``: one point against the current forest, no update.

    Parameters
    ----------
    dimensions : int or None, default=None
        Input values per point (before shingling), at least 1; None takes it from the first data.
    num_trees : int, default=100
        Number of trees, at least 1 (AWS default 50; KDA 100).
    sample_size : int, default=256
        Points in each tree's sample, at least 1 (AWS ``sampleSize``).
    time_decay : float or None, default=None
        The AWS decay rate λ per arrival, at least 0; None is ``1 / (10 * sample_size)``; 0 is a plain
        uniform reservoir.
    shingle_size : int, default=1
        The forest sees the concatenation of the last ``shingle_size`` inputs, oldest first
        (``dimensions * shingle_size`` values). Until that many inputs have arrived nothing is inserted and
        scores are 0.
    output_after : int or None, default=None
        Scores are 0 until this many shingles have been inserted, at least 0; None is
        ``max(1, sample_size // 4)`` as in the AWS library.
    random_state : int, numpy.random.SeedSequence, numpy.random.Generator or None, default=None
        Seed of the trees' generators; the same int gives the same stream of scores.
    bounding_box_cache_fraction : float in [0, 1], default=0.3
        Share of each tree's internal nodes whose bounding box is kept in memory (AWS
        ``boundingBoxCacheFraction``); the others are computed when needed. It changes memory and speed,
        never a score: 1.0 keeps every box, 0 none; the default (the upper nodes) keeps a 100 x 256
        forest at d = 4 under 1 MB.
    threshold : str, ThresholdRule or None, default="sigma:3"
        The rule (:mod:`clickstream_anomaly.thresholds`) that sets ``offset_`` from the scores of ``fit``;
        None sets none.

    Attributes
    ----------
    n_features_in_ : int
        Input columns per point (``dimensions``, or the first data's).
    time_decay_ : float
        The decay rate in use.
    output_after_ : int
        The warm-up length in use, in shingles.
    offset_ : float
        Set by ``fit``: the threshold on the score scale; rows scoring at least ``offset_`` are anomalous
        (``decision_function <= 0``).

    Notes
    -----
    Attribution vectors have ``dimensions * shingle_size`` entries in shingle order (entry
    ``k * dimensions + j`` is column ``j`` at lag ``shingle_size - 1 - k``); :meth:`per_column` sums them
    per input column. Inputs are rounded to float32, as AWS's default precision.

    Examples
    --------
    >>> import numpy as np
    >>> from clickstream_anomaly.rcf import StreamingRCF
    >>> t = np.arange(1000)
    >>> X = np.c_[np.sin(t / 20), np.cos(t / 20)] + np.random.default_rng(0).normal(0, 0.05, (1000, 2))
    >>> model = StreamingRCF(num_trees=50, sample_size=128, random_state=0)
    >>> scores, high, low = model.process(X)  # score each row, then insert it
    >>> scores.shape, high.shape, int(model.output_after_), bool((scores[:32] == 0).all())
    ((1000,), (1000, 2), 32, True)
    >>> round(model.score([0.0, 1.0]), 2), round(model.score([3.0, 3.0]), 2)  # on the circle, far off it
    (0.86, 4.89)
    >>> model = StreamingRCF(num_trees=50, sample_size=128, random_state=0).fit(X)
    >>> model.predict([[0.0, 1.0], [3.0, 3.0]])
    array([ 1, -1])
    """

    kind = "StreamingRCF"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "dimensions": [Interval(Integral, 1, None, closed="left"), None],
        "num_trees": [Interval(Integral, 1, None, closed="left")],
        "sample_size": [Interval(Integral, 1, None, closed="left")],
        "time_decay": [Interval(Real, 0, None, closed="left"), None],
        "shingle_size": [Interval(Integral, 1, None, closed="left")],
        "output_after": [Interval(Integral, 0, None, closed="left"), None],
        "random_state": ["random_state"],
        "bounding_box_cache_fraction": [Interval(Real, 0, 1, closed="both")],
        "threshold": [str, ThresholdRule, None],
    }
    _forest: Forest | None = None
    _path: _PointPath | None = None

    def __init__(  # noqa: PLR0913  (keyword-only hyperparameters, stored as given: scikit-learn's estimator contract)
        self,
        *,
        dimensions: int | None = None,
        num_trees: int = 100,
        sample_size: int = 256,
        time_decay: float | None = None,
        shingle_size: int = 1,
        output_after: int | None = None,
        random_state: int | np.random.SeedSequence | np.random.Generator | None = None,
        bounding_box_cache_fraction: float = DEFAULT_BOX_CACHE_FRACTION,
        threshold: str | ThresholdRule | None = DEFAULT_THRESHOLD,
    ) -> None:
        self.dimensions = dimensions
        self.num_trees = num_trees
        self.sample_size = sample_size
        self.time_decay = time_decay
        self.shingle_size = shingle_size
        self.output_after = output_after
        self.random_state = random_state
        self.bounding_box_cache_fraction = bounding_box_cache_fraction
        self.threshold = threshold

    # ------------------------------------------------------------------ the stream's start
    def _resolve(self, dim: int) -> None:
        """Set the fitted values derived from the parameters for inputs of ``dim`` values."""
        S = int(self.sample_size)
        self.n_features_in_ = int(dim)
        self.time_decay_ = 1.0 / (10 * S) if self.time_decay is None else float(self.time_decay)
        self.output_after_ = max(1, S // 4) if self.output_after is None else int(self.output_after)

    def _start(self, dim: int) -> Forest:
        """Create the empty forest for inputs of ``dim`` values (parameters already checked)."""
        self._resolve(dim)
        s = int(self.shingle_size)
        seed_seq = as_seed_sequence(self.random_state)
        forest = new_forest(
            int(self.num_trees), int(self.sample_size), dim * s, seed_seq, self.bounding_box_cache_fraction
        )
        self._forest = forest
        self._path = None
        self._buf = np.zeros((s, dim))  # last inputs, oldest first
        self._n_raw = 0
        return forest

    def _input_dim(self) -> int | None:
        """The input width, once known; checks the parameters on the stream's first call."""
        if self._forest is not None:
            return self.n_features_in_
        self._validate_params()
        return None if self.dimensions is None else int(self.dimensions)

    def _matrix(self, X: Any) -> np.ndarray:
        """``X`` checked (float32 values) against the stream's width; starts the stream."""
        X = as_matrix(X, self._input_dim(), cast=float32_values)
        if self._forest is None:
            self._start(X.shape[1])
        return X

    def _point(self, point: Any) -> np.ndarray:
        """One point checked (float32 values) against the stream's width; starts the stream."""
        dim = self._input_dim()
        p = as_point(point, dim if dim is not None else np.size(point), cast=float32_values)
        if self._forest is None:
            self._start(p.shape[0])
        return p

    def _started(self) -> Forest:
        if self._forest is None:
            dim = self._input_dim()
            if dim is None:
                raise NotFittedError(
                    "This StreamingRCF instance has not seen data and has no dimensions: call fit(...), "
                    "process(...) or update(...) first."
                )
            return self._start(dim)
        return self._forest

    # ------------------------------------------------------------------ properties
    @property
    def shingled_dimensions(self) -> int:
        """Values per shingle, ``dimensions * shingle_size``."""
        dim = self.n_features_in_ if self._forest is not None else self.dimensions
        if dim is None:
            raise NotFittedError("StreamingRCF: dimensions are not known before the first data")
        return int(dim) * int(self.shingle_size)

    @property
    def entries_seen(self) -> int:
        """Number of (shingled) points offered to the forest so far."""
        return 0 if self._forest is None else int(self._forest.sampler.seen[0])

    @property
    def inputs_seen(self) -> int:
        """Number of input points seen (including those that did not yet fill a shingle)."""
        return 0 if self._forest is None else self._n_raw

    @property
    def is_output_ready(self) -> bool:
        """Whether scores are past the warm-up (``entries_seen >= output_after_``)."""
        return self._forest is not None and self.entries_seen >= self.output_after_

    def nbytes(self) -> int:
        """Memory held by the model's arrays, in bytes."""
        forest = self._started()
        return forest.nbytes() + self._buf.nbytes

    def per_column(self, vector: np.ndarray) -> np.ndarray:
        """Sum a shingled attribution vector (last axis ``dimensions * shingle_size``) per input column:
        ndarray of the same shape with the last axis ``dimensions``."""
        v = np.asarray(vector, dtype=np.float64)
        s = int(self.shingle_size)
        return v.reshape(*v.shape[:-1], s, v.shape[-1] // s).sum(axis=-2)

    # ------------------------------------------------------------------ one point
    def _point_path(self) -> _PointPath:
        """The kept arguments of the single-point kernel for the current forest (remade when the forest's
        arrays were replaced: a new stream, a grown point store)."""
        path = self._path
        if path is None or path.forest is not self._forest:
            assert self._forest is not None
            path = self._path = _PointPath(self._forest)
        return path

    def _vector(self, point: Any) -> np.ndarray:
        """``point`` as a new float64 vector of shape (dimensions,) when it plainly is one; otherwise the
        fully checked point (:meth:`_point`, which raises on bad input and starts the stream). Values are
        checked and rounded to float32 by the kernel."""
        if self._forest is not None:
            try:
                x = np.array(point, dtype=np.float64)
            except (TypeError, ValueError):
                return self._point(point)
            if x.shape == (self.n_features_in_,):
                return x
        return self._point(point)

    def _step(
        self,
        x: np.ndarray,
        check: Callable[[], object],
        do_score: bool,
        do_attr: bool,
        do_update: bool,
        high: np.ndarray | None = None,
        low: np.ndarray | None = None,
    ) -> float:
        """Score (into ``high``/``low``, shape (D,), when ``do_attr``) and then update with one input ``x``
        (float64 of shape (dimensions,), from :meth:`_vector`) in one kernel call
        (:func:`.executor.point_step`), as :meth:`_run` does for a batch. ``check()`` must raise the
        error for an input the kernel refuses (a value not finite or beyond float32); nothing is changed
        then. Returns the score (0 during the warm-up or before the first shingle is complete)."""
        forest = self._forest
        assert forest is not None
        complete = self._n_raw + 1 >= self.shingle_size
        if do_update and complete and forest.store.n_free[0] < 1:
            check()  # before the store grows, which changes the state
            self._forest = forest.with_free_slots(1)
        path = self._point_path()
        score = point_step(
            path.arrays,
            x,
            self._buf,
            complete,
            self.time_decay_,
            self.output_after_,
            do_score,
            do_attr,
            do_update,
            path.unused if high is None else high,
            path.unused if low is None else low,
        )
        if score == REFUSED:
            check()
            raise ValueError(f"point has a value that is not finite or beyond the float32 range: {x.tolist()}")
        if do_update:
            self._n_raw += 1
        return score

    def score(self, point: Any) -> float:
        """AWS anomaly score of ``point`` (``dimensions`` values) against the current forest, higher is more
        anomalous (0 during the warm-up); no update."""
        return self._step(self._vector(point), lambda: self._point(point), True, False, False)

    def attribution(self, point: Any) -> tuple[np.ndarray, np.ndarray]:
        """DiVector ``(high, low)`` of ``point``, each ndarray of shape (dimensions * shingle_size,); their
        total is the score. ``high[i]`` is the part explained by the point lying above the sample in
        dimension ``i``, ``low[i]`` below it."""
        x = self._vector(point)
        D = self.shingled_dimensions
        high = np.zeros(D)
        low = np.zeros(D)
        self._step(x, lambda: self._point(point), True, True, False, high, low)
        return high, low

    # ------------------------------------------------------------------ the stream
    def update(self, point: Any) -> None:
        """Insert ``point`` (``dimensions`` values) through the shingle and every tree's sampler."""
        self._step(self._vector(point), lambda: self._point(point), False, False, True)

    def _one_row(self, X: Any) -> np.ndarray | None:
        """The row of ``X`` as a new float64 vector when ``X`` is a plain numeric array of one row of the
        stream's width (then :meth:`_step` processes it), else None (then :meth:`_run`)."""
        if (
            self._forest is None
            or type(X) is not np.ndarray  # not a subclass such as np.matrix, whose rows stay 2-D
            or X.shape != (1, self.n_features_in_)
            or X.dtype.kind not in "fiu"
        ):
            return None
        return np.array(X[0], dtype=np.float64)

    def process(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score (with attribution) then update, row by row, as AWS does.

        Parameters
        ----------
        X : array-like of shape (n_samples, dimensions)
            The next inputs, oldest first. The whole of ``X`` is checked first: a bad row raises
            ``ValueError`` and nothing is inserted.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Each row's score before it was inserted; higher is more anomalous, 0 during the warm-up.
        high, low : ndarray of shape (n_samples, dimensions * shingle_size)
            Each row's DiVector; ``high + low`` sums to the score.
        """
        x = self._one_row(X)
        if x is None:
            return self._run(self._matrix(X), True, True)
        D = self.shingled_dimensions
        high = np.zeros((1, D))
        low = np.zeros((1, D))
        score = self._step(x, lambda: self._matrix(X), True, True, True, high[0], low[0])
        return np.array([score]), high, low

    def process_scores(self, X: Any) -> np.ndarray:
        """Like :meth:`process` without attribution (faster): ndarray of shape (n_samples,)."""
        x = self._one_row(X)
        if x is None:
            return self._run(self._matrix(X), True, False)[0]
        return np.array([self._step(x, lambda: self._matrix(X), True, False, True)])

    def _shingles(self, X: np.ndarray) -> tuple[np.ndarray, int]:
        """The shingles completed by the rows of ``X`` (shape (m, dimensions * shingle_size)) and the row of
        ``X`` that completes the first."""
        s = int(self.shingle_size)
        k = min(self._n_raw, s - 1)
        combined = np.concatenate([self._buf[s - k :], X]) if k else X
        first = s - 1 - k
        if combined.shape[0] < s:
            return np.zeros((0, s * X.shape[1])), first
        shingles = np.lib.stride_tricks.sliding_window_view(combined, (s, X.shape[1]))[:, 0]
        return np.ascontiguousarray(shingles.reshape(-1, s * X.shape[1])), first

    def _run(
        self, X: np.ndarray, do_score: bool, do_attr: bool, do_update: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = X.shape[0]
        D = self.shingled_dimensions
        scores = np.zeros(n)
        high = np.zeros((n, D) if do_attr else (n, 0))
        low = np.zeros_like(high)
        shingles, first = self._shingles(X)
        unused = np.zeros((1, D))
        forest = self._started()
        for start in range(0, shingles.shape[0], _CHUNK):
            stop = min(start + _CHUNK, shingles.shape[0])
            if do_update:
                self._forest = forest = forest.with_free_slots(stop - start)
            rows = slice(first + start, first + stop)
            stream_process(
                forest,
                shingles[start:stop],
                self.time_decay_,
                self.output_after_,
                do_score,
                do_attr,
                do_update,
                scores[rows],
                high[rows] if do_attr else unused,
                low[rows] if do_attr else unused,
            )
        if do_update:
            self._buf = np.ascontiguousarray(np.concatenate([self._buf, X])[-int(self.shingle_size) :])
            self._n_raw += n
        return scores, high, low

    # ------------------------------------------------------------------ the estimator API
    def fit(self, X: Any, y: Any = None) -> Self:
        """Start a fresh stream, process ``X`` (array-like of shape (n_samples, dimensions)) as a stream and
        set ``offset_`` from its scores (``y``: 0/1 labels, only for the ``f1`` threshold). Returns
        ``self``."""
        self._validate_params()
        rule = self._threshold_rule()
        self._forest = None
        self._set_offset(rule, self.process_scores(X), y)
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Scores of the rows of ``X`` (array-like of shape (n_samples, dimensions)) as the stream's next
        inputs, without inserting them: ndarray of shape (n_samples,); higher is more anomalous, 0 where
        no shingle is complete or during the warm-up."""
        if self._forest is None:
            raise NotFittedError("This StreamingRCF instance has not seen data yet: call fit(...) or process(...).")
        return self._run(self._matrix(X), True, False, do_update=False)[0]

    # ------------------------------------------------------------------ persistence
    def _fitted_values(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_raw": int(self._n_raw),
            "n_features_in_": int(self.n_features_in_),
            "time_decay_": float(self.time_decay_),
            "output_after_": int(self.output_after_),
        }
        if getattr(self, "offset_", None) is not None:
            out["offset_"] = float(self.offset_)
        return out

    def state_parts(self) -> tuple[dict[str, Any], dict[str, Any], Forest, dict[str, np.ndarray]]:
        """``(params, fitted, forest, extra arrays)`` of the model's state (for states that embed it)."""
        forest = self._started()
        params = _state.jsonable_params(self.get_params(deep=False))
        return params, self._fitted_values(), forest, {"shingle_buffer": self._buf.copy()}

    def to_bytes(self) -> bytes:
        """The model as bytes (a :mod:`clickstream_anomaly.persist` state, version 3): parameters, trees,
        samplers, generator states and shingle."""
        return _state.dumps(self.kind, *self.state_parts())

    @classmethod
    def from_state(cls, saved: _state.SavedForest) -> StreamingRCF:
        """The model of a decoded state (:func:`.state.loads`); it continues exactly where the original
        was."""
        obj = cls(**saved.params)
        obj._validate_params()
        fitted = saved.fitted
        dim = int(fitted.get("n_features_in_", saved.params["dimensions"]))
        obj._resolve(dim)
        obj.time_decay_ = float(fitted.get("time_decay_", obj.time_decay_))
        obj.output_after_ = int(fitted.get("output_after_", obj.output_after_))
        buf = saved.extra["shingle_buffer"]
        if buf.shape != (int(obj.shingle_size), dim) or saved.forest.boxes.lo.shape[-1] != dim * int(obj.shingle_size):
            raise ValueError("saved StreamingRCF state does not match its parameters")
        obj._forest = saved.forest
        obj._buf = np.array(buf, dtype=np.float64)  # a writable copy: the single-point kernel shifts it
        obj._n_raw = int(fitted["n_raw"])
        if fitted.get("offset_") is not None:
            obj.offset_ = float(fitted["offset_"])
        return obj

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamingRCF:
        """A model written by :meth:`to_bytes` (or a version 1/2 ``.npz`` state)."""
        return cls.from_state(_state.loads(data, cls.kind, cls().get_params(deep=False)))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to ``path`` (atomically)."""
        persist.save(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> StreamingRCF:
        """Read a model written by :meth:`save`; it continues exactly where the original was."""
        return cls.from_bytes(persist.load(path))
