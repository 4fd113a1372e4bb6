"""The three detectors behind one interface: ``detector.detect(windows, labels=None) -> list[Detection]``.

* ``rcf-streaming``: Kinesis Data Analytics' ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` as the service ran it
  (score-then-update, one window at a time, per-column attribution with direction). Features are fed raw,
  as the SQL application would see them.
* ``rcf-batch``: SageMaker's Random Cut Forest: a forest fitted on the training windows, every window
  scored against it, as an endpoint would. Features are standardised with the training median and IQR
  (:class:`~clickstream_anomaly.scaling.Scaling`; cuts are range-proportional). SageMaker's RCF
  gives no attribution; the cause is the column furthest from its training median (robust z-score).
* ``deepar``: a DeepAR forecast of ``clicks`` per window; windows outside the [0.01, 0.99] band are
  anomalous (no score threshold).

The same interface fronts the SageMaker endpoints (see ``training/invoke.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..records import DEEPAR, RCF_BATCH, RCF_STREAMING
from ..thresholds import DEFAULT_THRESHOLD
from .base import Detector, detections_from_scores, deviation_explanation
from .deepar import BAND_SAMPLES, DeepARDetector
from .rcf import BatchRCFDetector, StreamingRCFDetector

DETECTOR_NAMES = (RCF_STREAMING, RCF_BATCH, DEEPAR)

__all__ = [
    "BAND_SAMPLES",
    "DETECTOR_NAMES",
    "BatchRCFDetector",
    "DeepARDetector",
    "Detector",
    "StreamingRCFDetector",
    "build_detectors",
    "detections_from_scores",
    "deviation_explanation",
]


def build_detectors(
    names: Sequence[str] = DETECTOR_NAMES, threshold: str = DEFAULT_THRESHOLD, **overrides: dict[str, Any]
) -> list[Detector]:
    """Detectors by name with blog defaults; ``overrides[name]`` holds keyword arguments for one of them."""
    classes = {RCF_STREAMING: StreamingRCFDetector, RCF_BATCH: BatchRCFDetector, DEEPAR: DeepARDetector}
    out: list[Detector] = []
    for name in names:
        if name not in classes:
            raise ValueError(f"unknown detector {name!r}; use {', '.join(DETECTOR_NAMES)}")
        kwargs = dict(overrides.get(name.replace("-", "_"), {}))
        if name != DEEPAR:
            kwargs.setdefault("threshold", threshold)
        out.append(classes[name](**kwargs))
    return out
