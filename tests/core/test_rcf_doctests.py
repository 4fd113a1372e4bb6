"""The Examples sections of the RCF docstrings run as written."""

from __future__ import annotations

import doctest

import pytest

from clickstream_anomaly.rcf import forest, streaming


@pytest.mark.parametrize("module", [forest, streaming])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
