"""The DeepAR forecast-band detector (numpy twin of SageMaker DeepAR)."""

from __future__ import annotations

import math
from datetime import datetime
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from ..base import BaseEstimator, check_is_fitted
from ..deepar.band import BAND_SAMPLES, DEFAULT_HIGH, DEFAULT_LOW
from ..records import DEEPAR, Detection
from ..validation import Interval
from ..windowspec import WindowSpec
from .base import _train_part

if TYPE_CHECKING:
    from ..deepar import DeepAREstimator

#: Days of windows the detector trains on when ``detect`` is called before ``fit`` (one weekly cycle).
DEFAULT_TRAIN_DAYS = 7

_ESTIMATOR_KEYS = (
    "context_length",
    "prediction_length",
    "epochs",
    "early_stopping_patience",
    "num_cells",
    "num_layers",
    "likelihood",
    "dropout_rate",
    "learning_rate",
    "mini_batch_size",
    "calibration_level",
    "random_state",
)


class DeepARDetector(BaseEstimator):
    """DeepAR forecast band: windows whose ``column`` falls outside the forecast's [low, high] quantiles.

    ``fit(history)`` trains a DeepAR on ``column`` of the history windows; ``detect(windows)`` scores
    every window after the training range with rolling forecasts, one block of ``prediction_length``
    windows at a time, each forecast from the observed windows before it
    (:func:`~clickstream_anomaly.deepar.forecast_band_detections`). The window length comes from the
    windows (:meth:`WindowSpec.of <clickstream_anomaly.windowspec.WindowSpec.of>`) and sets DeepAR's
    ``time_freq`` and the day the default lengths span.

    Parameters
    ----------
    column : str, default "clicks"
        The forecast column.
    context_length, prediction_length : int or None, default None
        In windows; None: one day of the windows (144 for 10 minutes, 24 for 1 hour).
    epochs, early_stopping_patience : int, default 60, 5
        At most ``epochs``, stopping after ``early_stopping_patience`` epochs without a better forecast
        of the held-out last day.
    num_cells, num_layers, dropout_rate, learning_rate, mini_batch_size
        The network and its training (SageMaker's names), default 40, 1, 0.1, 1e-3, 32.
    likelihood : str, default "negative-binomial"
        Counts: the band never goes below 0.
    calibration_level : float or None, default 0.98
        The band's coverage calibrated on the held-out day (:mod:`clickstream_anomaly.deepar.calibration`).
    low, high : float, default 0.01, 0.99
        The band's quantile levels.
    num_samples : int, default 1000
        Sample paths per forecast.
    train_days : float or None, default None
        Train on the first ``train_days`` days of the windows given to ``fit`` (None: all of them).
        When ``detect`` is called before ``fit`` it first fits on the first ``train_days`` days of its
        windows (None: 7, or enough whole days for SageMaker's 300 training values), leaving at least
        one block to score.
    train_until : str or Timestamp, optional
        Instead of ``train_days``: train on the windows before this time.
    random_state : int or None, default 0
        Seeds training and every forecast.
    name : str, default "deepar"
        The ``detector`` of the detections.
    on_epoch : callable, optional
        ``on_epoch(epoch, train_loss, val_loss)`` after each training epoch.

    Attributes
    ----------
    model_ : DeepARPredictor
        The trained model.
    window_spec_ : WindowSpec
        The window length it was trained on.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from clickstream_anomaly.detectors import DeepARDetector
    >>> hours = pd.date_range("2021-03-01", periods=24 * 16, freq="h", tz="UTC")
    >>> clicks = np.random.default_rng(0).poisson(30 + 20 * np.sin(2 * np.pi * hours.hour / 24))
    >>> clicks[-18] = 0  # an outage at 06:00 on the last day, the busiest hour
    >>> windows = pd.DataFrame({"window_start": hours, "urls": 5, "users": clicks // 2, "clicks": clicks,
    ...                         "residual": 0.0})
    >>> detector = DeepARDetector(epochs=5, learning_rate=0.01, num_cells=8, num_samples=200, train_days=15)
    >>> detections = detector.fit(windows).detect(windows)  # the last day: 24 hourly windows
    >>> len(detections), detections[6].is_anomaly, detections[6].p01 >= 0
    (24, True, True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "column": [str],
        "low": [Interval(Real, 0.0, 0.5, closed="neither")],
        "high": [Interval(Real, 0.5, 1.0, closed="neither")],
        "num_samples": [Interval(Integral, 1, None, closed="left")],
        "train_days": [Interval(Real, 0.0, None, closed="neither"), None],
        "train_until": [str, datetime, None],
        "name": [str],
        "on_epoch": [callable, None],
    }

    def __init__(  # noqa: PLR0913  (keyword-only hyperparameters, stored as given: scikit-learn's estimator contract)
        self,
        *,
        column: str = "clicks",
        context_length: int | None = None,
        prediction_length: int | None = None,
        epochs: int = 60,
        early_stopping_patience: int | None = 5,
        num_cells: int = 40,
        num_layers: int = 1,
        likelihood: str = "negative-binomial",
        dropout_rate: float = 0.1,
        learning_rate: float = 1e-3,
        mini_batch_size: int = 32,
        calibration_level: float | None = 0.98,
        low: float = DEFAULT_LOW,
        high: float = DEFAULT_HIGH,
        num_samples: int = BAND_SAMPLES,
        train_days: float | None = None,
        train_until: str | pd.Timestamp | None = None,
        random_state: int | None = 0,
        name: str = DEEPAR,
        on_epoch: Any = None,
    ) -> None:
        self.column = column
        self.context_length = context_length
        self.prediction_length = prediction_length
        self.epochs = epochs
        self.early_stopping_patience = early_stopping_patience
        self.num_cells = num_cells
        self.num_layers = num_layers
        self.likelihood = likelihood
        self.dropout_rate = dropout_rate
        self.learning_rate = learning_rate
        self.mini_batch_size = mini_batch_size
        self.calibration_level = calibration_level
        self.low = low
        self.high = high
        self.num_samples = num_samples
        self.train_days = train_days
        self.train_until = train_until
        self.random_state = random_state
        self.name = name
        self.on_epoch = on_epoch

    def estimator(self, spec: WindowSpec) -> DeepAREstimator:
        """The :class:`~clickstream_anomaly.deepar.DeepAREstimator` this detector trains for ``spec``."""
        from ..deepar import DeepAREstimator
        from ..deepar.timefeatures import time_freq_for

        return DeepAREstimator(
            time_freq=time_freq_for(spec),
            num_eval_samples=200,
            **{k: getattr(self, k) for k in _ESTIMATOR_KEYS},
        )

    def fit(self, windows: pd.DataFrame) -> DeepARDetector:
        """Train on ``column`` of ``windows`` (see ``train_days``/``train_until``); returns ``self``."""
        self._validate_params()
        return self._fit(self._training_part(windows, self.train_days), WindowSpec.of(windows))

    def _fit(self, train: pd.DataFrame, spec: WindowSpec) -> DeepARDetector:
        from ..sagemaker_formats import series_from_windows

        estimator = self.estimator(spec)
        estimator._validate_params()
        self.model_ = estimator.train([series_from_windows(train, self.column)], on_epoch=self.on_epoch)
        self.window_spec_ = spec
        return self

    def _training_part(self, windows: pd.DataFrame, days: float | None) -> pd.DataFrame:
        if self.train_until is not None:
            return _train_part(windows, self.train_until)
        frame = windows.sort_values("window_start", kind="stable")
        if days is None:
            return frame
        return frame.iloc[: round(days * WindowSpec.of(windows).per_day)]

    def default_train_windows(self, windows: pd.DataFrame) -> int:
        """Windows the detector trains on when ``detect`` comes first (see ``train_days``)."""
        from ..deepar.estimator import MIN_OBSERVATIONS

        spec = WindowSpec.of(windows)
        per_day = spec.per_day
        days = self.train_days
        if days is None:
            days = max(DEFAULT_TRAIN_DAYS, math.ceil(MIN_OBSERVATIONS / per_day))
        block = self.estimator(spec).resolved_lengths()[1]
        return max(0, min(round(days * per_day), len(windows) - block))

    def detect(self, windows: pd.DataFrame) -> list[Detection]:
        """One detection per window after the training range (fitting first on the default span when
        ``fit`` was not called)."""
        from ..deepar import forecast_band_detections

        if getattr(self, "model_", None) is None:
            self._validate_params()
            frame = windows.sort_values("window_start", kind="stable")
            train = (
                _train_part(frame, self.train_until)
                if self.train_until is not None
                else frame.iloc[: self.default_train_windows(frame)]
            )
            _check_length(train, windows)
            self._fit(train, WindowSpec.of(windows))
        check_is_fitted(self, "model_")
        spec = WindowSpec.of(windows, default=self.window_spec_.freq)
        if spec.length != self.window_spec_.length:
            raise ValueError(
                f"windows of {spec.freq}, but this DeepAR detector was trained on {self.window_spec_.freq}"
            )
        dets = forecast_band_detections(
            windows, self.model_, low=self.low, high=self.high, column=self.column, num_samples=self.num_samples
        )
        for d in dets:
            d.detector = self.name
        return dets


def _check_length(train: pd.DataFrame, windows: pd.DataFrame) -> None:
    from ..deepar.estimator import MIN_OBSERVATIONS

    if len(train) < MIN_OBSERVATIONS:
        spec = WindowSpec.of(windows)
        raise ValueError(
            f"deepar: {len(windows)} windows of {spec.freq} leave {len(train)} to train on; DeepAR needs at "
            f"least {MIN_OBSERVATIONS} ({math.ceil(MIN_OBSERVATIONS / spec.per_day)} days of {spec.freq} windows) "
            "and one more day to score: give more data or leave the deepar detector out"
        )
