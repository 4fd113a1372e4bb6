"""The core validation module: intervals of finite numbers, seed sequences, float32 casts in array checks."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pytest

from clickstream_anomaly.validation import (
    Interval,
    InvalidParameterError,
    as_matrix,
    as_point,
    as_seed_sequence,
    float32_values,
)


def test_intervals_hold_finite_numbers_only() -> None:
    rate = Interval(Real, 0, None, closed="left")
    assert rate.is_satisfied_by(0) and rate.is_satisfied_by(1e300)
    assert not rate.is_satisfied_by(math.inf) and not rate.is_satisfied_by(math.nan)
    assert not Interval(Integral, 1, None).is_satisfied_by(2.0)
    assert str(rate) == "a float in the range [0, inf)"


def test_seed_sequences_are_fresh_copies() -> None:
    ss = np.random.SeedSequence(5)
    a, b = as_seed_sequence(ss), as_seed_sequence(ss)
    assert a is not ss and a.spawn(1)[0].generate_state(2).tolist() == b.spawn(1)[0].generate_state(2).tolist()
    assert as_seed_sequence(3).entropy == np.random.SeedSequence(3).entropy
    g = np.random.default_rng(1)
    assert as_seed_sequence(g).entropy != as_seed_sequence(g).entropy  # a generator is drawn from
    with pytest.raises(InvalidParameterError):
        as_seed_sequence("seed")


def test_float32_cast_rounds_and_names_what_overflows() -> None:
    out = as_matrix([[0.1, 2.0]], 2, cast=float32_values)
    assert out.dtype == np.float64 and out[0, 0] == np.float64(np.float32(0.1))
    assert as_point([0.1, 1.0], 2, cast=float32_values)[0] == np.float64(np.float32(0.1))
    with pytest.raises(ValueError, match="X has a value beyond the float32 range"):
        as_matrix([[1e39, 0.0]], 2, cast=float32_values)
    with pytest.raises(ValueError, match="point has a value beyond the float32 range"):
        as_point([1e39, 0.0], 2, cast=float32_values)
