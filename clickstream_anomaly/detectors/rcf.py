"""The two Random Cut Forest detectors: KDA's streaming RCF with explanation and SageMaker's batch RCF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..base import BaseEstimator
from ..records import FEATURE_COLUMNS, RCF_BATCH, RCF_STREAMING, Detection
from ..scaling import Scaling
from ..thresholds import DEFAULT_THRESHOLD, ThresholdRule
from .base import _rule, _train_part, detections_from_scores, deviation_explanation

if TYPE_CHECKING:  # kda, and the forest it imports, are imported where they are used
    from ..kda import KdaRcfParameters


@dataclass(kw_only=True, repr=False, eq=False)
class StreamingRCFDetector(BaseEstimator):
    """KDA ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` twin. Blog defaults: 100 trees, 256 samples,
    time decay 4320 records (30 days of 10-minute windows), shingle 1, with directionality.

    ``fit(history)`` streams the history through a new forest; ``detect(windows)`` continues the stream
    (score, then update). The threshold rule is applied to the scores of both."""

    columns: Sequence[str] = FEATURE_COLUMNS
    number_of_trees: int = 100
    sub_sample_size: int = 256
    time_decay: int = 4320
    shingle_size: int = 1
    with_directionality: bool = True
    threshold: str | ThresholdRule = DEFAULT_THRESHOLD
    random_state: int | None = 0
    name: str = RCF_STREAMING
    stream_: Any = field(default=None, init=False, repr=False)
    history_scores_: np.ndarray | None = field(default=None, init=False, repr=False)

    def parameters(self) -> KdaRcfParameters:
        """The KDA SQL function's parameters of this detector."""
        from ..kda import KdaRcfParameters

        return KdaRcfParameters(
            number_of_trees=self.number_of_trees,
            sub_sample_size=self.sub_sample_size,
            time_decay=self.time_decay,
            shingle_size=self.shingle_size,
            with_directionality=self.with_directionality,
        )

    def _stream(self) -> Any:
        from ..kda import KdaRcfStream

        return KdaRcfStream(list(self.columns), self.parameters(), random_state=self.random_state)

    def _process(self, windows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        if self.stream_ is None:
            self.stream_, self.history_scores_ = self._stream(), np.empty(0)
        matrix = windows[list(self.columns)].to_numpy(dtype="float64")
        scores = np.empty(len(matrix))
        explanations = []
        for i, row in enumerate(matrix):
            scores[i], expl = self.stream_.process_row(row)
            explanations.append(expl)
        return scores, explanations

    def fit(self, history: pd.DataFrame) -> StreamingRCFDetector:
        """Stream ``history`` through a new forest (its scores count for the threshold); returns self."""
        self.stream_ = None
        scores, _ = self._process(history)
        self.history_scores_ = scores
        return self

    def score(self, windows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """``(scores (n,), explanation JSON strings)`` of ``windows`` in stream order, from a new forest."""
        self.stream_ = None
        return self._process(windows)

    def detect(self, windows: pd.DataFrame) -> list[Detection]:
        scores, explanations = self._process(windows)
        past = self.history_scores_ if self.history_scores_ is not None else np.empty(0)
        threshold = _rule(self.threshold).compute(np.concatenate([past, scores]))
        return detections_from_scores(windows, scores, self.name, threshold, explanations)


@dataclass(kw_only=True, repr=False, eq=False)
class BatchRCFDetector(BaseEstimator):
    """SageMaker Random Cut Forest twin: ``fit(history)`` trains the forest (not fitted: ``detect`` trains on
    the windows before ``train_until``, default all of them), every window is scored against it.
    Blog defaults: 100 trees, 512 samples per tree."""

    columns: Sequence[str] = FEATURE_COLUMNS
    num_trees: int = 100
    num_samples_per_tree: int = 512
    threshold: str | ThresholdRule = DEFAULT_THRESHOLD
    random_state: int | None = 0
    train_until: str | pd.Timestamp | None = None
    name: str = RCF_BATCH
    scaling_: Scaling | None = field(default=None, init=False, repr=False)
    forest_: Any = field(default=None, init=False, repr=False)

    def fit(self, history: pd.DataFrame) -> BatchRCFDetector:
        """Scale and train the forest on ``history``; returns self."""
        self._train(history)
        return self

    def _train(self, history: pd.DataFrame) -> Scaling:
        """:meth:`fit`; returns the new ``scaling_``."""
        from ..rcf import RandomCutForest

        if history.empty:
            raise ValueError("no training windows")
        self.scaling_ = scaling = Scaling.fit(history, self.columns)
        n_samples = min(self.num_samples_per_tree, len(history))
        self.forest_ = RandomCutForest(
            num_trees=self.num_trees,
            num_samples_per_tree=n_samples,
            random_state=self.random_state,
            threshold=None,  # the detector applies its own rule to the scores it gives
        )
        self.forest_.fit(scaling.apply(history))
        return scaling

    def _fitted_scaling(self, windows: pd.DataFrame) -> Scaling:
        """``scaling_``, training first on the windows before ``train_until`` when not fitted."""
        if self.forest_ is None or self.scaling_ is None:
            return self._train(_train_part(windows, self.train_until))
        return self.scaling_

    def score(self, windows: pd.DataFrame) -> np.ndarray:
        """Scores of ``windows`` (shape (n_windows,)), training first when not fitted."""
        scaling = self._fitted_scaling(windows)
        return self.forest_.score(scaling.apply(windows))

    def detect(self, windows: pd.DataFrame) -> list[Detection]:
        scores = self.score(windows)
        threshold = _rule(self.threshold).compute(scores)
        z = self._fitted_scaling(windows).apply(windows)
        attribution = [deviation_explanation(z[i], self.columns) for i in range(len(z))]
        return detections_from_scores(windows, scores, self.name, threshold, attribution)
