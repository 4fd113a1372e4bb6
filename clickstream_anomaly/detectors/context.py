"""The streaming RCF with time context: what a point-wise forest cannot see, given to it as input.

A streaming RCF on the raw window features sees "0 clicks" without its time of day and cannot tell an
outage at 14:00 from a quiet night. Three ways to give it context (``context``):

* ``"time"`` (the default, detector ``rcf-context``): the raw features (robustly scaled on the first day)
  plus the local hour of day as a point on the unit circle, so the forest learns which values go with
  which hour;
* ``"baseline"`` (detector ``rcf-deviation``): the forest reads the time-aware baseline's deviations (one
  per column, in spreads) instead of the raw values: an outage at any hour is a large negative deviation,
  a ramp a growing one;
* ``"shingle"``: the scaled features of the last ``shingle_size`` windows together (shape over time).

All three score then update each window (the streaming semantics of AWS's RCF) and explain a window by
per-column attribution, like ``RANDOM_CUT_FOREST_WITH_EXPLANATION``. ``bench/scenarios.py`` and
``bench/nab.py`` measure them (table in the docs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..base import BaseEstimator
from ..baseline import TimeAwareBaseline
from ..baseline.calendar import local_slots
from ..baseline.detector import COUNT_COLUMNS
from ..records import DIRECTIONS, FEATURE_COLUMNS, RCF_CONTEXT, RCF_DEVIATION, Detection
from ..thresholds import ThresholdRule
from ..validation import Options, validate_params
from ..windowspec import WindowSpec
from .base import _rule, detections_from_scores

CONTEXTS = ("baseline", "time", "shingle")
CONTEXT_THRESHOLD = "value:2.6"
DEVIATION_CAP = 10.0  # spreads: a deviation beyond this is just "very far" to the forest


@dataclass(kw_only=True, repr=False, eq=False)
class ContextRCFDetector(BaseEstimator):
    """Streaming RCF (AWS semantics) on window features with time context (see the module docstring).

    Defaults follow the KDA application's forest: 100 trees, 256 samples, time decay 4320 windows; the
    threshold is the blog's fixed 2.6 (an in-run ``sigma:3`` adapts to the incidents of the run itself).
    With ``context="baseline"`` the detections are named ``rcf-deviation`` (they are not independent of
    the baseline's).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"context": [Options(str, set(CONTEXTS))]}

    context: str = "time"
    columns: Sequence[str] = FEATURE_COLUMNS
    num_trees: int = 100
    sample_size: int = 256
    time_decay: int = 4320
    shingle_size: int = 4
    timezone: str = "UTC"
    threshold: str | ThresholdRule = CONTEXT_THRESHOLD
    random_state: int | None = 0
    name: str = RCF_CONTEXT
    forest_: Any = field(default=None, init=False, repr=False)

    def _inputs(self, windows: pd.DataFrame) -> np.ndarray:
        """The forest's input matrix of shape (n_windows, n_inputs) for the chosen context."""
        cols = list(self.columns)
        if self.context == "baseline":
            model = TimeAwareBaseline(
                columns=tuple(cols),
                count_columns=tuple(c for c in COUNT_COLUMNS if c in cols),
                timezone=self.timezone,
                window=WindowSpec.of(windows).freq,
            )
            z = model.fit(None).process(windows).z
            return np.clip(np.nan_to_num(z, nan=0.0), -DEVIATION_CAP, DEVIATION_CAP)
        raw = windows[cols].to_numpy(dtype="float64")
        spec = WindowSpec.of(windows)
        head = raw[: spec.per_day] if len(raw) > spec.per_day else raw
        centre = np.median(head, axis=0)
        scale = np.subtract(*np.percentile(head, [75, 25], axis=0))
        scaled = (raw - centre) / np.where(scale > 0, scale, 1.0)
        if self.context == "shingle":
            return scaled
        starts = pd.to_datetime(windows["window_start"], utc=True).to_numpy(dtype="datetime64[ns]").astype("int64")
        slots, _ = local_slots(starts, spec, self.timezone)
        angle = 2 * np.pi * slots / spec.per_day
        return np.column_stack([scaled, np.cos(angle), np.sin(angle)])

    def fit(self, history: pd.DataFrame) -> ContextRCFDetector:
        """Nothing to learn ahead: the forest learns the stream as it scores it (returns self)."""
        validate_params(self.get_params(deep=False), self._parameter_constraints, type(self).__name__)
        return self

    def detect(self, windows: pd.DataFrame) -> list[Detection]:
        """Score then learn each window; detections with per-column attribution and direction."""
        scores, explanation = self.score(windows)
        threshold = _rule(self.threshold).compute(scores)
        name = RCF_DEVIATION if self.context == "baseline" and self.name == RCF_CONTEXT else self.name
        return detections_from_scores(windows, scores, name, threshold, explanation)

    def score(self, windows: pd.DataFrame) -> tuple[np.ndarray, list[tuple[dict, dict, dict]]]:
        """Scores of shape (n_windows,) (higher is more anomalous) and per-window ``(attribution, direction,
        strength)`` dicts over ``columns``, from a new forest streamed over ``windows``."""
        from ..rcf import StreamingRCF

        self.fit(windows)
        X = self._inputs(windows)
        shingle = self.shingle_size if self.context == "shingle" else 1
        self.forest_ = StreamingRCF(
            dimensions=X.shape[1],
            num_trees=self.num_trees,
            sample_size=self.sample_size,
            time_decay=1.0 / self.time_decay,
            shingle_size=shingle,
            output_after=self.sample_size,
            random_state=self.random_state,
        )
        scores, high, low = self.forest_.process(X)
        n_cols = len(self.columns)
        width = X.shape[1]
        hi = high.reshape(len(X), shingle, width).sum(axis=1)[:, :n_cols]
        lo = low.reshape(len(X), shingle, width).sum(axis=1)[:, :n_cols]
        explanation = []
        for i in range(len(X)):
            attr = hi[i] + lo[i]
            explanation.append(
                (
                    {c: float(attr[j]) for j, c in enumerate(self.columns)},
                    {c: DIRECTIONS[0] if hi[i, j] > lo[i, j] else DIRECTIONS[1] for j, c in enumerate(self.columns)},
                    {c: float(abs(hi[i, j] - lo[i, j])) for j, c in enumerate(self.columns)},
                )
            )
        return scores, explanation
