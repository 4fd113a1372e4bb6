"""SageMaker DeepAR's hyperparameters as one constraints table, and the parser of their string form.

:data:`SAGEMAKER_CONSTRAINTS` lists every hyperparameter SageMaker DeepAR accepts, with the ranges this
project checks (the vocabulary of :mod:`clickstream_anomaly.validation`). The estimator's
``_parameter_constraints`` is built from it, so the training CLI, the SageMaker configuration and the
local twin reject the same values with the same message. :func:`validate_hyperparameters` takes the
values as a training job receives them (strings allowed) and returns them typed, defaults filled in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from ..validation import Interval, InvalidParameterError, Options, validate_params
from .likelihoods import SAGEMAKER_LIKELIHOODS
from .timefeatures import parse_freq

_POSITIVE = Interval(Integral, 1, None, closed="left")

#: Every SageMaker DeepAR hyperparameter and the values accepted for it.
SAGEMAKER_CONSTRAINTS: dict[str, list[Any]] = {
    "time_freq": [str],
    "context_length": [_POSITIVE],
    "prediction_length": [_POSITIVE],
    "epochs": [_POSITIVE],
    "likelihood": [Options(str, set(SAGEMAKER_LIKELIHOODS))],
    "num_cells": [_POSITIVE],
    "num_layers": [_POSITIVE],
    "dropout_rate": [Interval(Real, 0.0, 1.0, closed="left")],
    "learning_rate": [Interval(Real, 0.0, 1.0, closed="right")],
    "mini_batch_size": [_POSITIVE],
    "early_stopping_patience": [_POSITIVE, None],
    "num_eval_samples": [_POSITIVE],
    "num_dynamic_feat": [Options(str, {"auto", "ignore"}), Interval(Integral, 0, None, closed="left")],
    "cardinality": [Options(str, {"auto", "ignore"}), list],
    "embedding_dimension": [_POSITIVE],
    "test_quantiles": [list],
}

#: The hyperparameters a SageMaker training job must be given.
REQUIRED: tuple[str, ...] = ("context_length", "prediction_length", "time_freq", "epochs")

#: SageMaker's defaults for the optional ones.
SAGEMAKER_DEFAULTS: dict[str, Any] = {
    "likelihood": "student-T",
    "num_cells": 40,
    "num_layers": 2,
    "dropout_rate": 0.1,
    "learning_rate": 1e-3,
    "mini_batch_size": 128,
    "early_stopping_patience": None,
    "num_eval_samples": 100,
    "num_dynamic_feat": "auto",
    "cardinality": "auto",
    "embedding_dimension": 10,
    "test_quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
}


def _typed(value: Any, constraints: list[Any]) -> Any:
    """``value`` converted to the type its constraints expect: "144" -> 144, "5e-4" -> 0.0005,
    "[0.1]" -> [0.1], "" -> None where None is allowed; 144.0 -> 144 for integers. Unconvertible values
    are returned as given (the constraint check then names them)."""
    if isinstance(value, str):
        text = value.strip()
        if text == "" and None in constraints:
            return None
        if any(isinstance(c, Options) and text in c.values for c in constraints):
            return text
        if list in constraints:
            try:
                return json.loads(text)
            except ValueError:
                return value
        intervals = [c for c in constraints if isinstance(c, Interval)]
        if not intervals:
            return text
        try:
            value = float(text)
        except ValueError:
            return value
    integral = any(isinstance(c, Interval) and c.type is Integral for c in constraints)
    if isinstance(value, float) and value.is_integer() and integral:
        return int(value)
    if isinstance(value, tuple) and list in constraints:
        return list(value)
    return value


def check_time_freq(value: Any) -> str:
    """``time_freq`` stripped, or ``ValueError`` naming the accepted forms."""
    parse_freq(value)
    return value.strip()


def check_test_quantiles(value: list[Any]) -> list[float]:
    """``test_quantiles`` as floats, each in (0, 1)."""
    out = []
    for q in value:
        number = _typed(q, [Interval(Real, 0.0, 1.0, closed="neither")])
        if not Interval(Real, 0.0, 1.0, closed="neither").is_satisfied_by(number):
            raise InvalidParameterError(f"test_quantiles must hold numbers in (0, 1), got {value!r}")
        out.append(float(number))
    return out


def validate_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Check SageMaker DeepAR hyperparameters (SageMaker's names; values may be strings) and type them.

    Parameters
    ----------
    hyperparameters : mapping
        Name -> value, as a training job takes them (``"144"``, ``"5e-4"``, ``"[0.1, 0.5]"``) or as Python
        values. The four of :data:`REQUIRED` must be there.

    Returns
    -------
    dict
        Every hyperparameter, SageMaker's defaults filled in, as ``int``, ``float``, ``str``, ``list`` or
        ``None``. Likelihoods the local twin lacks (``beta``) are accepted: SageMaker has them.

    Raises
    ------
    ValueError
        Naming the first unknown, missing or bad hyperparameter and the values it accepts
        (``"epochs: The 'epochs' parameter of DeepAR must be an int in the range [1, inf). Got 0 instead."``).
    """
    unknown = sorted(set(hyperparameters) - set(SAGEMAKER_CONSTRAINTS))
    if unknown:
        raise InvalidParameterError(f"unknown DeepAR hyperparameter(s): {', '.join(unknown)}")
    missing = [k for k in REQUIRED if hyperparameters.get(k) in (None, "")]
    if missing:
        raise InvalidParameterError(f"missing required DeepAR hyperparameter(s): {', '.join(missing)}")
    out = {**SAGEMAKER_DEFAULTS, **hyperparameters}
    out = {k: _typed(v, SAGEMAKER_CONSTRAINTS[k]) for k, v in out.items()}
    for name, value in out.items():
        try:
            validate_params({name: value}, SAGEMAKER_CONSTRAINTS, "DeepAR")
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{name}: {exc}") from None
    out["time_freq"] = check_time_freq(out["time_freq"])
    out["test_quantiles"] = check_test_quantiles(out["test_quantiles"])
    if isinstance(out["cardinality"], list):
        out["cardinality"] = [_typed(c, [_POSITIVE]) for c in out["cardinality"]]
        if not all(_POSITIVE.is_satisfied_by(c) for c in out["cardinality"]):
            raise InvalidParameterError(f"cardinality must hold positive integers, got {out['cardinality']!r}")
    return out
