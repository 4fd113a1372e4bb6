"""Robust per-column feature scaling for Random Cut Forest: ``(x - median) / IQR``.

RCF picks the dimension of each cut with probability proportional to its range, so an unscaled ``clicks``
column (hundreds) would take most cuts from ``urls`` (tens). The batch detector, ``sagemaker prepare``
(which writes it to ``rcf/scaling.json`` for the endpoint's callers) and ``sagemaker invoke`` share this one
definition, fitted on the training windows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .features import feature_matrix
from .records import FEATURE_COLUMNS

RCF_SCALING_KEY = "rcf/scaling.json"  # beside the channel folders, outside them (SageMaker reads whole folders)


@dataclass(frozen=True)
class Scaling:
    """Per-column ``(x - center) / scale``: ``center`` the median, ``scale`` the IQR (1 where it is 0)."""

    columns: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, windows: pd.DataFrame, columns: Sequence[str] = FEATURE_COLUMNS) -> Scaling:
        raw = feature_matrix(windows, columns)
        if raw.shape[0] == 0:
            raise ValueError("cannot fit a scaling on no windows")
        q75, q25 = np.percentile(raw, [75, 25], axis=0)
        iqr = q75 - q25
        return cls(
            tuple(columns),
            tuple(float(v) for v in np.median(raw, axis=0)),
            tuple(float(v) if v > 0 else 1.0 for v in iqr),
        )

    @classmethod
    def identity(cls, columns: Sequence[str] = FEATURE_COLUMNS) -> Scaling:
        return cls(tuple(columns), (0.0,) * len(columns), (1.0,) * len(columns))

    def apply(self, windows: pd.DataFrame) -> np.ndarray:
        """``(n, d)`` scaled features of ``windows``."""
        return self.transform(feature_matrix(windows, self.columns))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Scale an ``(n, d)`` matrix whose columns are :attr:`columns`, in that order."""
        return (np.asarray(features, dtype="float64") - np.asarray(self.center)) / np.asarray(self.scale)

    def to_json(self) -> str:
        return json.dumps({"columns": list(self.columns), "center": list(self.center), "scale": list(self.scale)})

    @classmethod
    def from_json(cls, text: str | bytes) -> Scaling:
        """Inverse of :meth:`to_json`; ``ValueError`` naming the problem for anything else."""
        try:
            data = json.loads(text)
            out = cls(tuple(data["columns"]), tuple(map(float, data["center"])), tuple(map(float, data["scale"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not an RCF scaling file: {exc}") from exc
        if not len(out.columns) == len(out.center) == len(out.scale):
            raise ValueError("RCF scaling file: columns, center and scale differ in length")
        return out
