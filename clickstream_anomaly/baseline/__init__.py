"""The time-aware baseline: what normal looks like at each local hour and weekday, and how far a window is
from it. Modules: :mod:`.calendar` (local slots), :mod:`.model` (the state and its update),
:mod:`.detector` (:class:`TimeAwareBaseline`, detections)."""

from .detector import BaselineScores, TimeAwareBaseline, detections_from_baseline
from .model import SeasonalParams, SeasonalState

__all__ = ["BaselineScores", "SeasonalParams", "SeasonalState", "TimeAwareBaseline", "detections_from_baseline"]
