"""The time-aware baseline detector, the product's default: each window against what is normal for its
local time of day and day of week (:mod:`clickstream_anomaly.baseline`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..base import BaseEstimator
from ..baseline import TimeAwareBaseline, detections_from_baseline
from ..baseline.detector import BaselineScores
from ..records import BASELINE, FEATURE_COLUMNS, Detection
from ..windowspec import WindowSpec


@dataclass(kw_only=True, repr=False, eq=False)
class BaselineDetector(BaseEstimator):
    """Detections from :class:`~clickstream_anomaly.baseline.TimeAwareBaseline`: score in threshold units
    (1 = threshold), per-column attribution and direction, the expected value and band per column.

    ``fit(history)`` learns the history; ``detect(windows)`` scores each window and then learns it (a
    detector not fitted starts from no history: no verdict during its first day). ``exclude`` lists
    periods known to be unusual (holidays, maintenance) as ``(start, end)`` pairs: never flagged, never
    learned. The other keywords are :class:`TimeAwareBaseline`'s.
    """

    columns: Sequence[str] = FEATURE_COLUMNS
    timezone: str = "UTC"
    point_threshold: float = 5.0
    drift_slack: float = 1.0
    drift_threshold: float = 5.0
    exclude: Sequence[tuple[Any, Any]] = ()
    options: dict[str, Any] = field(default_factory=dict)
    name: str = BASELINE
    model_: TimeAwareBaseline | None = field(default=None, init=False, repr=False)
    scores_: BaselineScores | None = field(default=None, init=False, repr=False)

    def _model(self, spec: WindowSpec) -> TimeAwareBaseline:
        return TimeAwareBaseline(
            columns=tuple(self.columns),
            timezone=self.timezone,
            point_threshold=self.point_threshold,
            drift_slack=self.drift_slack,
            drift_threshold=self.drift_threshold,
            window=spec.freq,
            **self.options,
        )

    def fit(self, history: pd.DataFrame) -> BaselineDetector:
        """Learn ``history`` (windows in time order); returns self."""
        self.model_ = self._model(WindowSpec.of(history)).fit(history)
        return self

    def detect(self, windows: pd.DataFrame) -> list[Detection]:
        """One detection per window; the windows are learned after they are scored."""
        if self.model_ is None:
            self.model_ = self._model(WindowSpec.of(windows)).fit(None)
        self.scores_ = self.model_.process(windows, exclude=self.exclude)
        return detections_from_baseline(windows, self.scores_, self.name)
