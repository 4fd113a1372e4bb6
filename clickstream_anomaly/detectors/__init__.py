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

from ..records import BASELINE, DEEPAR, RCF_BATCH, RCF_CONTEXT, RCF_STREAMING
from .base import Detector, detections_from_scores, deviation_explanation
from .baseline import BaselineDetector
from .context import ContextRCFDetector
from .deepar import BAND_SAMPLES, DeepARDetector
from .rcf import BatchRCFDetector, StreamingRCFDetector

#: Every detector ``build_detectors`` knows.
DETECTOR_NAMES = (BASELINE, RCF_CONTEXT, RCF_STREAMING, RCF_BATCH, DEEPAR)
#: What ``detect`` and ``demo`` run when ``--detectors`` is not given.
DEFAULT_DETECTORS = (BASELINE, RCF_CONTEXT)
CLASSES: dict[str, type] = {
    BASELINE: BaselineDetector,
    RCF_CONTEXT: ContextRCFDetector,
    RCF_STREAMING: StreamingRCFDetector,
    RCF_BATCH: BatchRCFDetector,
    DEEPAR: DeepARDetector,
}

__all__ = [
    "BAND_SAMPLES",
    "DEFAULT_DETECTORS",
    "DETECTOR_NAMES",
    "BaselineDetector",
    "BatchRCFDetector",
    "ContextRCFDetector",
    "DeepARDetector",
    "Detector",
    "StreamingRCFDetector",
    "build_detectors",
    "detections_from_scores",
    "deviation_explanation",
]


def build_detectors(
    names: Sequence[str] = DEFAULT_DETECTORS, threshold: str | None = None, **overrides: dict[str, Any]
) -> list[Detector]:
    """Detectors by name with their defaults; ``overrides[name]`` (``-`` as ``_``) holds keyword arguments
    for one of them. ``threshold`` is the score threshold rule of the RCF detectors (default: each one's
    own, ``sigma:3`` for the AWS twins); the baseline and DeepAR decide themselves."""
    out: list[Detector] = []
    for name in names:
        if name not in CLASSES:
            raise ValueError(f"unknown detector {name!r}; use {', '.join(DETECTOR_NAMES)}")
        kwargs = dict(overrides.get(name.replace("-", "_"), {}))
        if threshold is not None and name in (RCF_STREAMING, RCF_BATCH, RCF_CONTEXT):
            kwargs.setdefault("threshold", threshold)
        out.append(CLASSES[name](**kwargs))
    return out
