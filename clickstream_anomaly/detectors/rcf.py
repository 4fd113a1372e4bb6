"""The two Random Cut Forest detectors: KDA's streaming RCF with explanation and SageMaker's batch RCF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..records import FEATURE_COLUMNS, RCF_BATCH, RCF_STREAMING, Detection
from ..scaling import Scaling
from ..thresholds import DEFAULT_THRESHOLD, ThresholdRule
from .base import _rule, _train_part, detections_from_scores, deviation_explanation


@dataclass
class StreamingRCFDetector:
    """KDA ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` twin. Blog defaults: 100 trees, 256 samples,
    time decay 4320 records (30 days of 10-minute windows), shingle 1, with directionality."""

    columns: Sequence[str] = FEATURE_COLUMNS
    number_of_trees: int = 100
    sub_sample_size: int = 256
    time_decay: int = 4320
    shingle_size: int = 1
    with_directionality: bool = True
    threshold: str | ThresholdRule = DEFAULT_THRESHOLD
    random_state: int | None = 0
    name: str = RCF_STREAMING

    def parameters(self):
        from ..kda import KdaRcfParameters

        return KdaRcfParameters(
            number_of_trees=self.number_of_trees,
            sub_sample_size=self.sub_sample_size,
            time_decay=self.time_decay,
            shingle_size=self.shingle_size,
            with_directionality=self.with_directionality,
        )

    def score(self, windows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """``(scores (n,), explanation JSON strings)`` in stream order."""
        from ..kda import KdaRcfStream

        stream = KdaRcfStream(list(self.columns), self.parameters(), random_state=self.random_state)
        matrix = windows[list(self.columns)].to_numpy(dtype="float64")
        scores = np.empty(len(matrix))
        explanations = []
        for i, row in enumerate(matrix):
            scores[i], expl = stream.process_row(row)
            explanations.append(expl)
        return scores, explanations

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        scores, explanations = self.score(windows)
        threshold = _rule(self.threshold).compute(scores, labels)
        return detections_from_scores(windows, scores, self.name, threshold, explanations)


@dataclass
class BatchRCFDetector:
    """SageMaker Random Cut Forest twin: fit on ``train`` windows (default: all), score every window.
    Blog defaults: 100 trees, 512 samples per tree."""

    columns: Sequence[str] = FEATURE_COLUMNS
    num_trees: int = 100
    num_samples_per_tree: int = 512
    threshold: str | ThresholdRule = DEFAULT_THRESHOLD
    random_state: int | None = 0
    train_until: str | pd.Timestamp | None = None
    name: str = RCF_BATCH
    scaling_: Scaling | None = field(default=None, init=False, repr=False)

    def score(self, windows: pd.DataFrame) -> np.ndarray:
        from ..rcf import RandomCutForest

        train = _train_part(windows, self.train_until)
        self.scaling_ = Scaling.fit(train, self.columns)
        n_samples = min(self.num_samples_per_tree, len(train))
        forest = RandomCutForest(
            num_trees=self.num_trees, num_samples_per_tree=n_samples, random_state=self.random_state
        )
        forest.fit(self.scaling_.apply(train))
        return forest.score(self.scaling_.apply(windows))

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        scores = self.score(windows)
        threshold = _rule(self.threshold).compute(scores, labels)
        z = self.scaling_.apply(windows)
        attribution = [deviation_explanation(z[i], self.columns) for i in range(len(z))]
        return detections_from_scores(windows, scores, self.name, threshold, attribution)
