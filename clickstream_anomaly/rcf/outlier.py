"""The outlier-detector outputs shared by both forests, scikit-learn's way: ``offset_`` learned in
``fit`` from a threshold rule, ``decision_function`` and ``predict`` built on ``score_samples``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import NotFittedError
from ..thresholds import ThresholdRule, parse_threshold
from ..validation import InvalidParameterError


class OutlierMixin:
    """``decision_function``/``predict`` from ``score_samples`` (higher is more anomalous) and ``offset_``.

    The class needs a ``threshold`` parameter (a spec such as ``"sigma:3"``, a
    :class:`~clickstream_anomaly.thresholds.ThresholdRule`, or None for no ``offset_``) and a
    ``score_samples(X)`` method.
    """

    threshold: str | ThresholdRule | None

    def score_samples(self, X: Any) -> np.ndarray:  # pragma: no cover - provided by the estimator
        raise NotImplementedError

    def _threshold_rule(self) -> ThresholdRule | None:
        """The parsed ``threshold`` parameter; an :class:`InvalidParameterError` naming it when it is bad."""
        spec = self.threshold
        if spec is None or isinstance(spec, ThresholdRule):
            return spec
        try:
            return parse_threshold(spec)
        except ValueError as exc:
            raise InvalidParameterError(
                f"The 'threshold' parameter of {type(self).__name__} must be a threshold spec "
                f"(sigma:K, percentile:P, value:X or f1) or None. {exc}"
            ) from None

    def _set_offset(self, rule: ThresholdRule | None, scores: np.ndarray, y: Any = None) -> None:
        """``offset_`` = ``rule`` applied to ``scores`` (``y``: 0/1 labels, only for the ``f1`` rule)."""
        self.__dict__.pop("offset_", None)
        if rule is not None:
            self.offset_ = float(rule.compute(scores, None if y is None else np.asarray(y)))

    def _offset(self) -> float:
        offset = getattr(self, "offset_", None)
        if offset is None:
            raise NotFittedError(
                f"This {type(self).__name__} instance has no offset_: call fit(...) with a threshold rule "
                "(threshold=None sets none) before decision_function or predict."
            )
        return offset

    def decision_function(self, X: Any) -> np.ndarray:
        """``offset_ - score_samples(X)``: ndarray of shape (n_samples,); negative is anomalous, 0 is the
        threshold, positive is normal."""
        offset = self._offset()
        return offset - self.score_samples(X)

    def predict(self, X: Any) -> np.ndarray:
        """-1 for anomalous rows, +1 for normal ones: ndarray of shape (n_samples,), int64.

        A row is anomalous when its score is at least ``offset_`` and above 0, as the project's detections
        (a warm-up score of 0 is never anomalous)."""
        offset = self._offset()
        scores = self.score_samples(X)
        return np.where((scores > 0) & (scores >= offset), -1, 1).astype(np.int64)
