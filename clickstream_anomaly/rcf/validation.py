"""Input checks shared by the batch and streaming forests: clear ``ValueError`` messages, no state change."""

from __future__ import annotations

from typing import Any

import numpy as np


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1, or ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def as_matrix(X: Any, dim: int | None, *, what: str = "X") -> np.ndarray:
    """``X`` as a C-contiguous float64 ``(n, dim)`` matrix of finite values (a 1-D input is one row
    when ``dim`` is known and matches, else one column)."""
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
    return _float32_values(arr, what)


def _float32_values(arr: np.ndarray, what: str) -> np.ndarray:
    """Round to float32 (the forest's precision, as AWS's default FLOAT_32), returned as float64."""
    if (np.abs(arr) > np.finfo(np.float32).max).any():
        raise ValueError(f"{what} has a value beyond the float32 range (|x| > 3.4e38) used by the forest")
    return np.ascontiguousarray(arr.astype(np.float32), dtype=np.float64)


def as_point(point: Any, dim: int) -> np.ndarray:
    """One point as a finite float64 vector of length ``dim``."""
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
    return _float32_values(arr, "point")


def fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1], or ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {v}")
    return v
