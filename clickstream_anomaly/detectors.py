"""The three detectors behind one interface: ``detector.detect(windows, labels=None) -> list[Detection]``.

* ``rcf-streaming``: Kinesis Data Analytics' ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` as the service ran it
  (score-then-update, one window at a time, per-column attribution with direction). Features are fed raw,
  as the SQL application would see them.
* ``rcf-batch``: SageMaker's Random Cut Forest: a forest fitted on the training windows, every window
  scored against it, as an endpoint would. Features are standardised with the training median and IQR
  (:class:`~clickstream_anomaly.scaling.Scaling`; cuts are range-proportional). SageMaker's RCF
  gives no attribution; the cause is the column furthest from its training median (robust z-score).
* ``deepar``: a DeepAR forecast of ``clicks`` per window; windows outside the [0.01, 0.99] band are
  anomalous (no score threshold).

The same interface fronts the SageMaker endpoints (see ``training/invoke.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .features import windows_to_records
from .records import DEEPAR, FEATURE_COLUMNS, RCF_BATCH, RCF_STREAMING, Detection, explanation_fields
from .scaling import Scaling
from .thresholds import DEFAULT_THRESHOLD, ThresholdRule, parse_threshold

DETECTOR_NAMES = (RCF_STREAMING, RCF_BATCH, DEEPAR)
BAND_SAMPLES = 1000  # DeepAR sample paths per forecast: the 1 % / 99 % quantiles need several hundred


class Detector(Protocol):
    name: str

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        """Detections for ``windows`` (frame in WINDOW_COLUMNS order); ``labels`` only for ``f1``."""
        ...


def detections_from_scores(
    windows: pd.DataFrame, scores: np.ndarray, detector: str, threshold: float, attribution: Sequence[Any] | None = None
) -> list[Detection]:
    """One :class:`Detection` per window: ``is_anomaly = score >= threshold`` (and score > 0).

    ``attribution`` (optional, one entry per window) holds KDA explanation JSON strings or dicts, or
    ``(attribution, direction, strength)`` tuples of per-column dicts.
    """
    scores = np.asarray(scores, dtype="float64")
    if len(scores) != len(windows):
        raise ValueError(f"{len(scores)} scores for {len(windows)} windows")
    out = []
    for i, win in enumerate(windows_to_records(windows)):
        attr = direction = strength = None
        if attribution is not None and attribution[i] is not None:
            entry = attribution[i]
            attr, direction, strength = entry if isinstance(entry, tuple) else explanation_fields(entry)
        score = float(scores[i])
        out.append(
            Detection(
                window=win,
                detector=detector,
                score=score,
                threshold=float(threshold),
                is_anomaly=bool(score > 0 and score >= threshold),
                attribution=attr,
                direction=direction,
                strength=strength,
            )
        )
    return out


def _rule(spec: str | ThresholdRule) -> ThresholdRule:
    return spec if isinstance(spec, ThresholdRule) else parse_threshold(spec)


@dataclass
class StreamingRCFDetector:
    """KDA ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` twin. Blog defaults: 100 trees, 256 samples,
    time decay 4320 records (30 days of 10-minute windows), shingle 1, with directionality."""

    columns: Sequence[str] = FEATURE_COLUMNS
    number_of_trees: int = 100
    sub_sample_size: int = 256
    time_decay: int = 4320
    shingle_size: int = 1
    with_directionality: bool = True
    threshold: str | ThresholdRule = DEFAULT_THRESHOLD
    random_state: int | None = 0
    name: str = RCF_STREAMING

    def parameters(self):
        from .kda import KdaRcfParameters

        return KdaRcfParameters(
            number_of_trees=self.number_of_trees,
            sub_sample_size=self.sub_sample_size,
            time_decay=self.time_decay,
            shingle_size=self.shingle_size,
            with_directionality=self.with_directionality,
        )

    def score(self, windows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """``(scores (n,), explanation JSON strings)`` in stream order."""
        from .kda import KdaRcfStream

        stream = KdaRcfStream(list(self.columns), self.parameters(), random_state=self.random_state)
        matrix = windows[list(self.columns)].to_numpy(dtype="float64")
        scores = np.empty(len(matrix))
        explanations = []
        for i, row in enumerate(matrix):
            scores[i], expl = stream.process_row(row)
            explanations.append(expl)
        return scores, explanations

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        scores, explanations = self.score(windows)
        threshold = _rule(self.threshold).compute(scores, labels)
        return detections_from_scores(windows, scores, self.name, threshold, explanations)


@dataclass
class BatchRCFDetector:
    """SageMaker Random Cut Forest twin: fit on ``train`` windows (default: all), score every window.
    Blog defaults: 100 trees, 512 samples per tree."""

    columns: Sequence[str] = FEATURE_COLUMNS
    num_trees: int = 100
    num_samples_per_tree: int = 512
    threshold: str | ThresholdRule = DEFAULT_THRESHOLD
    random_state: int | None = 0
    train_until: str | pd.Timestamp | None = None
    name: str = RCF_BATCH
    scaling_: Scaling | None = field(default=None, init=False, repr=False)

    def score(self, windows: pd.DataFrame) -> np.ndarray:
        from .rcf import RandomCutForest

        train = _train_part(windows, self.train_until)
        self.scaling_ = Scaling.fit(train, self.columns)
        n_samples = min(self.num_samples_per_tree, len(train))
        forest = RandomCutForest(
            num_trees=self.num_trees, num_samples_per_tree=n_samples, random_state=self.random_state
        )
        forest.fit(self.scaling_.apply(train))
        return forest.score(self.scaling_.apply(windows))

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        scores = self.score(windows)
        threshold = _rule(self.threshold).compute(scores, labels)
        z = self.scaling_.apply(windows)
        attribution = [deviation_explanation(z[i], self.columns) for i in range(len(z))]
        return detections_from_scores(windows, scores, self.name, threshold, attribution)


def deviation_explanation(z: np.ndarray, columns: Sequence[str]) -> tuple[dict, dict, dict]:
    """Per-column share of ``|z|`` with direction by sign: the batch detectors' explanation."""
    mag = np.abs(z)
    total = mag.sum() or 1.0
    cols = list(columns)
    return (
        {c: float(mag[i] / total) for i, c in enumerate(cols)},
        {c: ("HIGH" if z[i] >= 0 else "LOW") for i, c in enumerate(cols)},
        {c: float(mag[i]) for i, c in enumerate(cols)},
    )


def _train_part(windows: pd.DataFrame, until: str | pd.Timestamp | None) -> pd.DataFrame:
    if until is None:
        return windows
    ts = pd.Timestamp(until)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    part = windows[pd.to_datetime(windows["window_start"], utc=True) < ts]
    if part.empty:
        raise ValueError(f"no training windows before {ts}")
    return part


@dataclass
class DeepARDetector:
    """DeepAR forecast-band twin: train on the windows before ``train_until`` (default: all but the last
    ``prediction_length`` windows), flag later windows whose ``column`` falls outside [low, high].

    Defaults: the blog's shape (1 layer, 40 cells, batch 32, learning rate 5e-4, context = prediction =
    144) with student-T and early stopping on the held-out day's forecasts (patience 5, at most 60 epochs),
    the settings ``bench/deepar.py`` measured to beat seasonal naive."""

    column: str = "clicks"
    context_length: int = 144
    prediction_length: int = 144
    epochs: int = 60
    early_stopping_patience: int | None = 5
    num_cells: int = 40
    num_layers: int = 1
    likelihood: str = "student-T"
    learning_rate: float = 5e-4
    mini_batch_size: int = 32
    low: float = 0.01
    high: float = 0.99
    num_samples: int = BAND_SAMPLES
    train_until: str | pd.Timestamp | None = None
    random_state: int | None = 0
    name: str = DEEPAR
    on_epoch: Any = field(default=None, repr=False)  # called as on_epoch(epoch, train_loss, val_loss)
    model_: Any = field(default=None, init=False, repr=False)

    def fit(self, windows: pd.DataFrame):
        from .deepar import DeepAR
        from .sagemaker_formats import series_from_windows

        train = (
            _train_part(windows, self.train_until)
            if self.train_until is not None
            else windows.iloc[: max(len(windows) - self.prediction_length, 0)]
        )
        self.model_ = DeepAR(
            context_length=self.context_length,
            prediction_length=self.prediction_length,
            time_freq="10min",
            epochs=self.epochs,
            num_cells=self.num_cells,
            num_layers=self.num_layers,
            likelihood=self.likelihood,
            learning_rate=self.learning_rate,
            mini_batch_size=self.mini_batch_size,
            early_stopping_patience=self.early_stopping_patience,
            random_state=self.random_state,
        )
        self.model_.fit([series_from_windows(train, self.column)], on_epoch=self.on_epoch)
        return self

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        from .deepar import forecast_band_detections

        if self.model_ is None:
            self.fit(windows)
        dets = forecast_band_detections(
            windows, self.model_, low=self.low, high=self.high, column=self.column, num_samples=self.num_samples
        )
        for d in dets:
            d.detector = self.name
        return dets


def build_detectors(
    names: Sequence[str] = DETECTOR_NAMES, threshold: str = DEFAULT_THRESHOLD, **overrides: dict[str, Any]
) -> list[Detector]:
    """Detectors by name with blog defaults; ``overrides[name]`` holds keyword arguments for one of them."""
    classes = {RCF_STREAMING: StreamingRCFDetector, RCF_BATCH: BatchRCFDetector, DEEPAR: DeepARDetector}
    out: list[Detector] = []
    for name in names:
        if name not in classes:
            raise ValueError(f"unknown detector {name!r}; use {', '.join(DETECTOR_NAMES)}")
        kwargs = dict(overrides.get(name.replace("-", "_"), {}))
        if name != DEEPAR:
            kwargs.setdefault("threshold", threshold)
        out.append(classes[name](**kwargs))
    return out
