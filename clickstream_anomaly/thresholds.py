"""Score thresholds: turning anomaly scores into yes/no.

Specs (the ``--threshold`` option):

* ``sigma:K`` (default ``sigma:3``): mean + K standard deviations of the scores, AWS's documented practice
  for RCF, with two refinements, both measured on the demo (``make demo``):

  - the deviation is the *upper semi-deviation* σ⁺ (root mean square of the excess over the mean, taken
    over the scores above the mean). For symmetric scores σ⁺ equals the standard deviation, so the rule is
    the documented one; RCF scores are right-skewed (a long tail of busy-hour inliers) and the plain std
    understates that tail: on the demo's batch RCF, mean + 3 std flags 16 normal windows, this rule 1
    (``bench/thresholds.py``);
  - robust to the anomalies in the sample: before the statistics, scores are capped at twice their 99th
    percentile, so a few huge scores cannot inflate σ⁺ and hide the smaller anomalies (AWS's own
    thresholder caps the scores it learns from, at 2.0, for the same reason). Dropping outliers instead
    (sigma clipping) was measured and rejected: on skewed scores it cannot tell the anomalies from the
    inlier tail and walks the threshold down into it (52-79 false windows on the demo instead of 1-6).

  Warm-up zeros (KDA emits score 0 for its first records) are left out of the statistics. Scores with
  no spread (a single one, or all equal) give a threshold just above them: nothing stands out.
* ``percentile:P``: the P-th percentile of the (non-warm-up) scores.
* ``value:X``: a fixed threshold, e.g. the blog's ``value:2.6``.
* ``f1``: with labels, the threshold that maximises F1 on them (an optimistic, in-sample figure meant for
  choosing a threshold to deploy, reported with the precision/recall curve).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

DEFAULT_THRESHOLD = "sigma:3"
KINDS = ("sigma", "percentile", "value", "f1")

#: A detector's precision/recall curve as a run reports it: ``precision``, ``recall`` and ``thresholds``
#: (lists, from :func:`best_f1_threshold`) and ``best_f1`` (a number).
CurveReport: TypeAlias = dict[str, list[float] | float]


@dataclass(frozen=True)
class ThresholdRule:
    """A parsed threshold spec. ``param`` is K, P or X (``None`` for ``f1``)."""

    kind: str
    param: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown threshold kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.kind == "sigma" and (self.param is None or self.param <= 0):
            raise ValueError("sigma:K needs K > 0")
        if self.kind == "percentile" and (self.param is None or not 0 < self.param < 100):
            raise ValueError("percentile:P needs 0 < P < 100")
        if self.kind == "value" and (self.param is None or not np.isfinite(self.param)):
            raise ValueError("value:X needs a finite number")

    @property
    def spec(self) -> str:
        return "f1" if self.kind == "f1" else f"{self.kind}:{self.param:g}"

    def _number(self) -> float:
        """``param`` of a sigma, percentile or value rule (never ``None`` there, see ``__post_init__``)."""
        if self.param is None:
            raise ValueError(f"{self.kind} needs a number")
        return float(self.param)

    def compute(self, scores: np.ndarray, labels: np.ndarray | None = None) -> float:
        """The threshold for ``scores`` (shape ``(n,)``); ``labels`` (0/1, same shape) only for ``f1``."""
        scores = np.asarray(scores, dtype="float64")
        if self.kind == "value":
            return self._number()
        active = scores[scores > 0] if (scores > 0).any() else scores
        if active.size == 0:
            raise ValueError("no scores to compute a threshold from")
        if self.kind in ("sigma", "percentile") and (active.size < 2 or np.ptp(active) == 0):
            # One score, or all equal: no spread, nothing stands out (mean + k·0 would flag every window).
            return float(np.nextafter(active.max(), np.inf))
        if self.kind == "sigma":
            return sigma_threshold(active, self._number())
        if self.kind == "percentile":
            return float(np.percentile(active, self._number()))
        if labels is None:
            raise ValueError("the f1 threshold needs labels (--labels)")
        return best_f1_threshold(scores, np.asarray(labels))[0]


def parse_threshold(spec: str) -> ThresholdRule:
    """``"sigma:3"`` / ``"percentile:99"`` / ``"value:2.6"`` / ``"f1"`` -> :class:`ThresholdRule`."""
    text = spec.strip().lower()
    if text == "f1":
        return ThresholdRule("f1")
    kind, sep, value = text.partition(":")
    if not sep:
        raise ValueError(f"bad threshold {spec!r}: use sigma:K, percentile:P, value:X or f1")
    try:
        param = float(value)
    except ValueError:
        raise ValueError(f"bad threshold {spec!r}: {value!r} is not a number") from None
    return ThresholdRule(kind, param)


def upper_semideviation(values: np.ndarray) -> float:
    """Root mean square of ``values - mean`` over the values above the mean (0 when none are)."""
    mean = values.mean()
    above = values[values > mean] - mean
    return float(np.sqrt(np.mean(above**2))) if above.size else 0.0


def sigma_threshold(scores: np.ndarray, k: float = 3.0) -> float:
    """Mean + ``k`` σ⁺ of ``scores`` capped at twice their 99th percentile (see the module docstring)."""
    values = np.asarray(scores, dtype="float64")
    capped = np.minimum(values, 2.0 * np.percentile(values, 99))
    return float(capped.mean() + k * upper_semideviation(capped))


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, dict[str, list[float]]]:
    """``(threshold, f1, curve)`` maximising F1 of ``score >= threshold`` against 0/1 ``labels``.

    ``curve`` holds scikit-learn's precision/recall curve (``precision``, ``recall``, ``thresholds``).
    """
    from sklearn.metrics import precision_recall_curve

    labels = np.asarray(labels).astype(int)
    if labels.sum() == 0:
        raise ValueError("the f1 threshold needs at least one anomalous label")
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    curve = {"precision": precision.tolist(), "recall": recall.tolist(), "thresholds": thresholds.tolist()}
    return float(thresholds[best]), float(f1[best]), curve
