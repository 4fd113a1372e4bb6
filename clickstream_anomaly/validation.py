"""Parameter constraints and input checks: the one validation module of the core.

Every estimator declares its constructor parameters once, as data, in ``_parameter_constraints``
(``{name: [constraint, ...]}``); :func:`validate_params` checks them when ``fit`` starts and raises an
:class:`InvalidParameterError` that names the parameter, the class and every accepted value. The
vocabulary follows scikit-learn's ``_param_validation``:

* :class:`Interval` ``(Integral | Real, left, right, closed=...)``: a number in a range;
* :class:`Options` ``(str, {...})``: one of a set of values;
* ``"boolean"``, ``"random_state"`` (None, an int, a ``SeedSequence`` or a ``Generator``),
  ``"array-like"``, ``callable``, ``None``, or a type (``dict``, ``str``...).

The array checks (:func:`as_matrix`, :func:`as_point`) are shared by every model that takes numbers; their
``cast`` argument post-processes the checked values (:func:`float32_values` rounds them to the forests'
float32 precision). :func:`check_random_state` and :func:`as_seed_sequence` turn a ``random_state`` into a
generator or a seed sequence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "Integral",
    "Interval",
    "InvalidParameterError",
    "Options",
    "Real",
    "as_matrix",
    "as_point",
    "as_seed_sequence",
    "check_random_state",
    "float32_values",
    "validate_params",
]


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter outside its constraints (a ``ValueError`` and a ``TypeError``, as
    scikit-learn's)."""


@dataclass(frozen=True)
class Interval:
    """A number of ``type`` (``Integral`` or ``Real``) between ``left`` and ``right`` (``None``: unbounded).

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``. Only finite numbers are inside (an
    unbounded side is open). Booleans are never numbers here.
    """

    type: type
    left: float | None
    right: float | None
    closed: str = "both"

    def __post_init__(self) -> None:
        if self.closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be both, left, right or neither, got {self.closed!r}")

    def is_satisfied_by(self, value: Any) -> bool:
        # ``type`` is Integral or Real (numpy's scalars are registered with both); the second check tells
        # mypy that ``value`` is a number.
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.type) or not isinstance(value, Real):
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        if self.left is not None and (v < self.left or (v == self.left and self.closed in ("right", "neither"))):
            return False
        return not (
            self.right is not None and (v > self.right or (v == self.right and self.closed in ("left", "neither")))
        )

    def __str__(self) -> str:
        kind = "an int" if self.type is Integral else "a float"
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        return f"{kind} in the range {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """One of ``values`` (compared with ``==``), of ``type``."""

    type: type
    values: Collection[Any]

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.type) and value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=str))


def _satisfies(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, Interval | Options):
        return constraint.is_satisfied_by(value)
    if constraint == "boolean":
        return isinstance(value, bool | np.bool_)
    if constraint == "random_state":
        return value is None or (
            isinstance(value, Integral | np.random.SeedSequence | np.random.Generator) and not isinstance(value, bool)
        )
    if constraint == "array-like":
        return hasattr(value, "__len__") or hasattr(value, "__array__")
    if constraint is callable:
        return callable(value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    raise TypeError(f"unknown constraint {constraint!r}")


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if constraint == "random_state":
        return "an int, a SeedSequence, a Generator or None"
    if constraint == "boolean":
        return "a bool"
    if constraint is callable:
        return "a callable"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return str(constraint)


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, list[Any]], owner: str) -> None:
    """Check every ``params[name]`` against ``constraints[name]`` (at least one must hold).

    Raises
    ------
    InvalidParameterError
        Naming the parameter, ``owner`` and the accepted values, e.g. "The 'num_trees' parameter of
        RandomCutForest must be an int in the range [1, inf). Got 0 instead."
    """
    for name, value in params.items():
        allowed = constraints.get(name)
        if allowed is None or any(_satisfies(c, value) for c in allowed):
            continue
        texts = [_describe(c) for c in allowed]
        accepted = texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]
        raise InvalidParameterError(f"The {name!r} parameter of {owner} must be {accepted}. Got {value!r} instead.")


def check_random_state(seed: Any) -> np.random.Generator:
    """A ``numpy.random.Generator`` from None, an int, a ``SeedSequence`` or a ``Generator`` (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, Integral | np.random.SeedSequence):
        return np.random.default_rng(seed if seed is None or isinstance(seed, np.random.SeedSequence) else int(seed))
    raise InvalidParameterError(f"random_state must be an int, a SeedSequence, a Generator or None, got {seed!r}")


def as_seed_sequence(random_state: Any) -> np.random.SeedSequence:
    """A fresh ``numpy.random.SeedSequence`` from None, an int, a ``SeedSequence`` or a ``Generator``.

    A ``SeedSequence`` is copied (same entropy and spawn key, no children spawned yet), so spawning from the
    result gives the same children however often it is called; a ``Generator`` is drawn from (advancing it).
    """
    if isinstance(random_state, np.random.SeedSequence):
        return np.random.SeedSequence(
            random_state.entropy, spawn_key=random_state.spawn_key, pool_size=random_state.pool_size
        )
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(0, 2**63, size=4).tolist())
    if random_state is None or (isinstance(random_state, Integral) and not isinstance(random_state, bool)):
        return np.random.SeedSequence(None if random_state is None else int(random_state))
    raise InvalidParameterError(
        f"random_state must be an int, a SeedSequence, a Generator or None, got {random_state!r}"
    )


def float32_values(arr: np.ndarray) -> np.ndarray:
    """``arr`` rounded to float32 and returned as float64 (the forests' precision, as AWS's default
    ``FLOAT_32``); a ``ValueError`` when a value lies beyond the float32 range."""
    if (np.abs(arr) > np.finfo(np.float32).max).any():
        raise ValueError("has a value beyond the float32 range (|x| > 3.4e38) used by the forest")
    return np.ascontiguousarray(arr.astype(np.float32), dtype=np.float64)


def _cast(arr: np.ndarray, cast: Callable[[np.ndarray], np.ndarray] | None, what: str) -> np.ndarray:
    if cast is None:
        return arr
    try:
        return cast(arr)
    except ValueError as exc:
        raise ValueError(f"{what} {exc}") from None


def as_matrix(
    X: Any, dim: int | None, *, what: str = "X", cast: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """``X`` as a C-contiguous float64 matrix of shape (n_points, n_dimensions) of finite values.

    A 1-D input is one row when ``dim`` is known and matches, else one column. ``cast`` post-processes the
    checked matrix (the forests pass :func:`float32_values`); a ``ValueError`` it raises is reported after
    ``what``. Errors name ``what``, the row and the column.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{what} is not a numeric array: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} has non-numeric values ({arr.dtype}): {exc}") from exc
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{what} has complex values")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if dim is not None and arr.shape[0] == dim else arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_points, n_dimensions), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 points)")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what} has {arr.shape[1]} dimensions, expected {dim}")
    if arr.shape[1] == 0:
        raise ValueError(f"{what} has 0 dimensions")
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{what} has a non-finite value (NaN or inf) at row {r}, column {c}: {arr[r, c]}")
    return _cast(np.ascontiguousarray(arr), cast, what)


def as_point(point: Any, dim: int, *, cast: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """One point as a finite float64 vector of shape (dim,), post-processed by ``cast`` as in :func:`as_matrix`."""
    try:
        arr = np.asarray(point, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"point has non-numeric values: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"point must be 1-D with {dim} values, got shape {arr.shape}")
    if arr.shape[0] != dim:
        raise ValueError(f"point has {arr.shape[0]} dimensions, expected {dim}")
    if not np.isfinite(arr).all():
        raise ValueError(f"point has a non-finite value (NaN or inf): {arr.tolist()}")
    return _cast(arr, cast, "point")
