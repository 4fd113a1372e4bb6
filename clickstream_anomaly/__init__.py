"""Clickstream anomaly detection: records, features, and numpy twins of the AWS detectors.

The estimators are importable from the package itself (loaded on first use, so ``import
clickstream_anomaly`` stays light)::

    from clickstream_anomaly import TimeAwareBaseline, RandomCutForest, StreamingRCF, DeepAREstimator

The core imports no AWS library; the cloud side is :mod:`clickstream_anomaly.aws`, and the Lambda
handlers, the CDK app and the SageMaker workflows import the core, never the other way round.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public estimators -> the module that defines them.
_ESTIMATORS = {
    "TimeAwareBaseline": "clickstream_anomaly.baseline",
    "RandomCutForest": "clickstream_anomaly.rcf",
    "StreamingRCF": "clickstream_anomaly.rcf",
    "DeepAREstimator": "clickstream_anomaly.deepar",
    "DeepARPredictor": "clickstream_anomaly.deepar",
    "DeepAR": "clickstream_anomaly.deepar",
}

__all__ = ["__version__", *_ESTIMATORS]


def __getattr__(name: str) -> Any:
    if name in _ESTIMATORS:
        return getattr(importlib.import_module(_ESTIMATORS[name]), name)
    raise AttributeError(f"module 'clickstream_anomaly' has no attribute {name!r}")
