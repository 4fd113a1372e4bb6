"""Streaming Random Cut Forest with AWS semantics (score-then-update, time-decayed samplers, DiVector).

Each of the ``num_trees`` trees keeps its own time-decayed weighted reservoir of ``sample_size`` points
(AWS ``CompactSampler``): the point arriving as number ``t`` gets the weight ``-time_decay * t +
log(-log u)`` and a tree keeps the ``sample_size`` smallest weights, so a point lives about
``1 / time_decay`` arrivals on average. The score is AWS's default anomaly score (expected inverse
isolation depth, normalised by ``log2(mass + 1)``, averaged over trees): inliers about 0.7-1, clear
anomalies 1.5-3+. It is 0 until ``output_after`` (shingled) points have been inserted.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import state as _state
from ._kernels import stream_process
from .arrays import DEFAULT_BOX_CACHE_FRACTION, ForestArrays
from .validation import as_matrix, as_point, fraction, positive_int

_CHUNK = 256


class StreamingRCF:
    """Streaming RCF over ``dimensions`` input columns with optional internal shingling.

    Parameters
    ----------
    dimensions : number of input values per point (before shingling).
    num_trees, sample_size : forest size (AWS defaults 50/256; KDA 100/256).
    time_decay : the AWS decay rate λ per arrival; default ``1 / (10 * sample_size)``; 0 is a plain
        uniform reservoir.
    shingle_size : the forest sees the concatenation of the last ``shingle_size`` inputs, oldest first
        (``dimensions * shingle_size`` values). Until that many inputs have arrived nothing is inserted and
        scores are 0.
    output_after : scores are 0 until this many shingles have been inserted; default
        ``max(1, sample_size // 4)`` as in the AWS library.
    random_state : int, ``numpy.random.SeedSequence`` or None (fresh entropy).
    bounding_box_cache_fraction : share of each tree's internal nodes whose bounding box is kept in
        memory (AWS ``boundingBoxCacheFraction``); the others are computed when needed. It changes
        memory and speed, never a score: 1.0 keeps every box, 0 none; the default 0.3 (the upper nodes)
        keeps a 100 x 256 forest at d = 4 under 1 MB.

    Attribution vectors have ``dimensions * shingle_size`` entries in shingle order (entry
    ``k * dimensions + j`` is column ``j`` at lag ``shingle_size - 1 - k``); :meth:`per_column` sums them
    per input column.
    """

    kind = "StreamingRCF"

    def __init__(
        self,
        dimensions: int,
        num_trees: int = 100,
        sample_size: int = 256,
        time_decay: float | None = None,
        shingle_size: int = 1,
        output_after: int | None = None,
        random_state: int | np.random.SeedSequence | None = None,
        bounding_box_cache_fraction: float = DEFAULT_BOX_CACHE_FRACTION,
    ) -> None:
        self.dimensions = positive_int("dimensions", dimensions)
        self.num_trees = positive_int("num_trees", num_trees)
        self.sample_size = positive_int("sample_size", sample_size)
        self.shingle_size = positive_int("shingle_size", shingle_size)
        if time_decay is None:
            time_decay = 1.0 / (10 * self.sample_size)
        time_decay = float(time_decay)
        if not np.isfinite(time_decay) or time_decay < 0:
            raise ValueError(f"time_decay must be a finite rate >= 0, got {time_decay}")
        self.time_decay = time_decay
        if output_after is None:
            output_after = max(1, self.sample_size // 4)
        if isinstance(output_after, bool) or not isinstance(output_after, int | np.integer) or output_after < 0:
            raise ValueError(f"output_after must be an integer >= 0, got {output_after!r}")
        self.output_after = int(output_after)
        self.bounding_box_cache_fraction = fraction("bounding_box_cache_fraction", bounding_box_cache_fraction)
        if random_state is None or isinstance(random_state, int | np.integer):
            seed_seq = np.random.SeedSequence(None if random_state is None else int(random_state))
        elif isinstance(random_state, np.random.SeedSequence):
            seed_seq = random_state
        else:
            raise ValueError(f"random_state must be an int, a SeedSequence or None, got {random_state!r}")
        self.random_state = int(random_state) if isinstance(random_state, int | np.integer) else None
        self._a = ForestArrays.empty(
            self.num_trees, self.sample_size, self.shingled_dimensions, seed_seq, self.bounding_box_cache_fraction
        )
        self._buf = np.zeros((self.shingle_size, self.dimensions))  # last inputs, oldest first
        self._n_raw = 0

    # ------------------------------------------------------------------ properties
    @property
    def shingled_dimensions(self) -> int:
        return self.dimensions * self.shingle_size

    @property
    def entries_seen(self) -> int:
        """Number of (shingled) points offered to the forest so far."""
        return self._a.entries_seen

    @property
    def inputs_seen(self) -> int:
        """Number of input points seen (including those that did not yet fill a shingle)."""
        return self._n_raw

    @property
    def is_output_ready(self) -> bool:
        return self.entries_seen >= self.output_after

    def nbytes(self) -> int:
        """Memory held by the model's arrays, in bytes."""
        return self._a.nbytes() + self._buf.nbytes

    def per_column(self, vector: np.ndarray) -> np.ndarray:
        """Sum a shingled attribution vector (last axis ``dimensions * shingle_size``) per input column."""
        v = np.asarray(vector, dtype=np.float64)
        return v.reshape(*v.shape[:-1], self.shingle_size, self.dimensions).sum(axis=-2)

    # ------------------------------------------------------------------ queries
    def _shingle_with(self, point: np.ndarray) -> np.ndarray | None:
        if self._n_raw + 1 < self.shingle_size:
            return None
        return np.concatenate([self._buf[1:].ravel(), point])

    def _visit(self, point: Any, want_attr: bool) -> tuple[float, np.ndarray, np.ndarray]:
        p = as_point(point, self.dimensions)
        D = self.shingled_dimensions
        high = np.zeros((1, D))
        low = np.zeros((1, D))
        scores = np.zeros(1)
        q = self._shingle_with(p)
        if q is not None and self.is_output_ready:
            a = self._a
            stream_process(
                q.reshape(1, -1),
                self.time_decay,
                self.output_after,
                True,
                want_attr,
                False,
                scores,
                high,
                low,
                *a.kernel_args(),
            )
        return float(scores[0]), high[0], low[0]

    def score(self, point: Any) -> float:
        """AWS anomaly score of ``point`` (``dimensions`` values) against the current forest; no update."""
        return self._visit(point, False)[0]

    def attribution(self, point: Any) -> tuple[np.ndarray, np.ndarray]:
        """DiVector ``(high, low)`` of ``point``, each ``(dimensions * shingle_size,)``; their total is the
        score. ``high[i]`` is the part explained by the point lying above the sample in dimension ``i``."""
        _, high, low = self._visit(point, True)
        return high, low

    # ------------------------------------------------------------------ updates
    def update(self, point: Any) -> None:
        """Insert ``point`` (through the shingle and every tree's sampler)."""
        self._run(as_point(point, self.dimensions).reshape(1, -1), False, False)

    def process(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score (with attribution) then update, row by row, as AWS does.

        Returns ``scores (n,)``, ``high (n, D)``, ``low (n, D)`` with ``D = dimensions * shingle_size``.
        The whole of ``X`` is validated first: a bad row raises ``ValueError`` and nothing is inserted.
        """
        return self._run(as_matrix(X, self.dimensions), True, True)

    def process_scores(self, X: Any) -> np.ndarray:
        """Like :meth:`process` without attribution (faster): the ``(n,)`` scores."""
        return self._run(as_matrix(X, self.dimensions), True, False)[0]

    def _run(self, X: np.ndarray, do_score: bool, do_attr: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = X.shape[0]
        s = self.shingle_size
        D = self.shingled_dimensions
        scores = np.zeros(n)
        high = np.zeros((n, D) if do_attr else (n, 0))
        low = np.zeros_like(high)
        k = min(self._n_raw, s - 1)
        combined = np.concatenate([self._buf[s - k :], X]) if k else X
        first = s - 1 - k  # first row of X that completes a shingle
        if combined.shape[0] >= s:
            shingles = np.lib.stride_tricks.sliding_window_view(combined, (s, self.dimensions))[:, 0]
            shingles = np.ascontiguousarray(shingles.reshape(-1, D))
            a = self._a
            hi_view = high[first:] if do_attr else np.zeros((1, D))
            lo_view = low[first:] if do_attr else np.zeros((1, D))
            for start in range(0, shingles.shape[0], _CHUNK):
                stop = min(start + _CHUNK, shingles.shape[0])
                a.ensure_free(stop - start)
                sc = scores[first + start : first + stop]
                hv = hi_view[start:stop] if do_attr else hi_view
                lv = lo_view[start:stop] if do_attr else lo_view
                stream_process(
                    shingles[start:stop],
                    self.time_decay,
                    self.output_after,
                    do_score,
                    do_attr,
                    True,
                    sc,
                    hv,
                    lv,
                    *a.kernel_args(),
                )
        tail = np.concatenate([self._buf, X])[-s:]
        self._buf = np.ascontiguousarray(tail)
        self._n_raw += n
        return scores, high, low

    # ------------------------------------------------------------------ persistence
    def _params(self) -> dict[str, Any]:
        return {
            "dimensions": self.dimensions,
            "num_trees": self.num_trees,
            "sample_size": self.sample_size,
            "time_decay": self.time_decay,
            "shingle_size": self.shingle_size,
            "output_after": self.output_after,
            "random_state": self.random_state,
            "bounding_box_cache_fraction": self.bounding_box_cache_fraction,
            "n_raw": self._n_raw,
        }

    def to_bytes(self) -> bytes:
        arrays = self._a.to_dict()
        arrays["shingle_buffer"] = self._buf
        return _state.dumps(self.kind, self._params(), arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamingRCF:
        params, arrays, version = _state.loads(data, cls.kind)
        n_raw = int(params.pop("n_raw"))
        obj = cls(**params)
        buf = arrays.pop("shingle_buffer")
        if version == 1:
            obj._a = ForestArrays.from_v1(arrays, obj.time_decay, obj.bounding_box_cache_fraction)
        else:
            obj._a = ForestArrays.from_dict(arrays)
        if buf.shape != obj._buf.shape or obj._a.box.shape[-1] != obj.shingled_dimensions:
            raise ValueError("saved StreamingRCF state does not match its parameters")
        obj._buf = np.ascontiguousarray(buf, dtype=np.float64)
        obj._n_raw = n_raw
        return obj

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model (parameters, trees, samplers, RNG states, shingle) to ``path``."""
        _state.save(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> StreamingRCF:
        """Read a model written by :meth:`save`; it continues exactly where the original was."""
        return cls.from_bytes(_state.load(path))

    def __repr__(self) -> str:
        return (
            f"StreamingRCF(dimensions={self.dimensions}, num_trees={self.num_trees}, "
            f"sample_size={self.sample_size}, time_decay={self.time_decay:g}, "
            f"shingle_size={self.shingle_size}, output_after={self.output_after}, "
            f"bounding_box_cache_fraction={self.bounding_box_cache_fraction:g}, "
            f"entries_seen={self.entries_seen})"
        )
