"""The Examples sections of the DeepAR modules run as doctests (tiny models, one or two epochs)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "clickstream_anomaly.deepar.estimator",
    "clickstream_anomaly.deepar.predictor",
    "clickstream_anomaly.deepar.model",
    "clickstream_anomaly.deepar.metrics",
    "clickstream_anomaly.detectors.deepar",
)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no Examples"
    assert result.failed == 0
