"""The detectors behind one lifecycle: ``fit(history)``, then ``detect(windows) -> list[Detection]``.

* ``baseline``: the time-aware baseline (:mod:`clickstream_anomaly.baseline`): what normal looks like at
  each local time of day and weekday; judges each window itself (no score threshold).
* ``baseline-pages``: the same baseline per popular page (:mod:`.pages`): a page that stops getting clicks
  while the site's totals hide it (needs the clicks per page: windows computed from clicks).
* ``rcf-context``: a streaming RCF given the time of day as context (``context="time"``); with
  ``context="baseline"`` it reads the baseline's deviations and is named ``rcf-deviation``.
* ``rcf-streaming``: Kinesis Data Analytics' ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` as the service ran it
  (score-then-update, one window at a time, per-column attribution with direction), on the raw features.
* ``rcf-batch``: SageMaker's Random Cut Forest: fitted on the history, every window scored against it;
  features standardised with the history's median and IQR; the cause is the column furthest from its
  median (robust z-score).
* ``deepar``: a DeepAR day-ahead forecast band of ``clicks`` per window (no score threshold).

The same lifecycle fronts the SageMaker endpoints (:mod:`clickstream_anomaly.aws.training.invoke`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..records import BASELINE, DEEPAR, PAGES, RCF_BATCH, RCF_CONTEXT, RCF_STREAMING
from .base import Detector, detections_from_scores, deviation_explanation
from .baseline import BaselineDetector
from .context import ContextRCFDetector
from .deepar import BAND_SAMPLES, DeepARDetector
from .pages import PageBaselineDetector
from .rcf import BatchRCFDetector, StreamingRCFDetector

#: Every detector ``build_detectors`` knows.
DETECTOR_NAMES = (BASELINE, PAGES, RCF_CONTEXT, RCF_STREAMING, RCF_BATCH, DEEPAR)
#: What ``detect`` and ``demo`` run when ``--detectors`` is not given.
DEFAULT_DETECTORS = (BASELINE, PAGES, RCF_CONTEXT)
CLASSES: dict[str, type] = {
    BASELINE: BaselineDetector,
    PAGES: PageBaselineDetector,
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
    "PageBaselineDetector",
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
