"""The estimator base: constructor stores, get_params/set_params, clone, constraint errors, fitted checks."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pytest
from sklearn.base import clone

from clickstream_anomaly.base import BaseEstimator, NotFittedError, check_is_fitted
from clickstream_anomaly.validation import Interval, InvalidParameterError, Options, check_random_state


class Toy(BaseEstimator):
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "size": [Interval(Integral, 1, None, closed="left")],
        "rate": [Interval(Real, 0, 1, closed="right"), None],
        "mode": [Options(str, {"a", "b"})],
        "random_state": ["random_state"],
    }

    def __init__(self, *, size: int = 3, rate: float | None = 0.5, mode: str = "a", random_state=None) -> None:
        self.size = size
        self.rate = rate
        self.mode = mode
        self.random_state = random_state

    def fit(self, X):
        self._validate_params()
        self.mean_ = float(np.mean(X))
        return self


def test_get_set_params_and_clone_round_trip():
    t = Toy(size=7, mode="b")
    assert t.get_params() == {"mode": "b", "random_state": None, "rate": 0.5, "size": 7}
    assert t.set_params(rate=0.25) is t and t.rate == 0.25
    c = clone(t.fit([1.0, 2.0]))
    assert c.get_params() == t.get_params() and not hasattr(c, "mean_")
    assert repr(t) == "Toy(mode='b', rate=0.25, size=7)"


def test_set_params_rejects_unknown_names():
    with pytest.raises(ValueError, match="invalid parameter 'sizes' for Toy"):
        Toy().set_params(sizes=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, r"'size' parameter of Toy must be an int in the range \[1, inf\). Got 0"),
        ({"size": True}, "'size' parameter of Toy must be an int"),
        ({"rate": 1.5}, r"must be a float in the range \(0, 1\] or None. Got 1.5"),
        ({"mode": "c"}, "must be one of 'a', 'b'. Got 'c'"),
        ({"random_state": "x"}, "must be an int, a SeedSequence, a Generator or None"),
    ],
)
def test_fit_validates_against_the_constraints(kwargs, message):
    est = Toy(**kwargs)  # the constructor never validates
    with pytest.raises(InvalidParameterError, match=message):
        est.fit([1.0])


def test_check_is_fitted():
    with pytest.raises(NotFittedError, match="Toy instance is not fitted yet"):
        check_is_fitted(Toy())
    check_is_fitted(Toy().fit([1.0]))
    check_is_fitted(Toy().fit([1.0]), "mean_")


def test_check_random_state():
    g = np.random.default_rng(1)
    assert check_random_state(g) is g
    assert check_random_state(3).integers(1000) == np.random.default_rng(3).integers(1000)
    with pytest.raises(InvalidParameterError):
        check_random_state(1.5)


def test_the_estimators_are_exported_from_the_package():
    import clickstream_anomaly
    from clickstream_anomaly import DeepAREstimator, RandomCutForest, StreamingRCF, TimeAwareBaseline

    assert {"TimeAwareBaseline", "RandomCutForest", "StreamingRCF", "DeepAREstimator"} <= set(
        clickstream_anomaly.__all__
    )
    for est in (TimeAwareBaseline(), DeepAREstimator()):
        assert clone(est).get_params() == est.get_params()
    assert RandomCutForest.__module__.startswith("clickstream_anomaly.rcf")
    assert StreamingRCF.__module__.startswith("clickstream_anomaly.rcf")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        clickstream_anomaly.Nope  # noqa: B018
