"""The DeepAR forecast-band detector (numpy twin of SageMaker DeepAR)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..records import DEEPAR, Detection
from .base import _train_part

BAND_SAMPLES = 1000  # DeepAR sample paths per forecast: the 1 % / 99 % quantiles need several hundred


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
        from ..deepar import DeepAR
        from ..sagemaker_formats import series_from_windows

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
        from ..deepar import forecast_band_detections

        if self.model_ is None:
            self.fit(windows)
        dets = forecast_band_detections(
            windows, self.model_, low=self.low, high=self.high, column=self.column, num_samples=self.num_samples
        )
        for d in dets:
            d.detector = self.name
        return dets
