"""Parsing hyperparameter values as SageMaker passes them (numbers, or strings of numbers)."""

from __future__ import annotations

from typing import Any


def as_int(name: str, value: Any, minimum: int | None = None, error: type[ValueError] = ValueError) -> int:
    """``value`` (int, integral float or string) as an int; ``error`` naming ``name`` otherwise.

    Booleans are refused (``True`` is not a tree count), as are values below ``minimum`` when given.
    """
    if isinstance(value, bool):
        raise error(f"{name} must be an integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise error(f"{name} must be an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise error(f"{name} must be >= {minimum}, got {value!r}")
    return int(number)
