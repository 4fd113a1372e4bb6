"""``DeepAR``: estimator and predictor in one object, with SageMaker's ``fit(series)`` / ``predict(request)``.

A thin layer over :class:`~.estimator.DeepAREstimator` (whose ``train`` returns a
:class:`~.predictor.DeepARPredictor`) for callers that want one object, as a SageMaker training job plus
endpoint give: ``DeepAR(...).fit(records).predict(body)``. Unlike the estimator it checks its
arguments when built, and it takes the four required SageMaker hyperparameters positionally.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..base import NotFittedError
from .calibration import BandCalibration
from .estimator import _HYPERPARAMETERS, DeepAREstimator, OnEpoch
from .hyperparameters import validate_hyperparameters
from .metrics import mean_weighted_quantile_loss
from .predictor import DeepARPredictor
from .timefeatures import Freq, parse_freq
from .training import TrainResult
from .transform import Transform

__all__ = ["DeepAR", "mean_weighted_quantile_loss", "validate_hyperparameters"]


class DeepAR(DeepAREstimator):
    """DeepAR with ``fit(series) -> self`` and ``predict(request) -> response`` (see the module docstring).

    Parameters are those of :class:`~.estimator.DeepAREstimator`; ``context_length``,
    ``prediction_length``, ``time_freq`` and ``epochs`` come first and are required, as in a SageMaker
    training job. Bad values raise ``ValueError`` here, at construction.

    Examples
    --------
    >>> import numpy as np
    >>> from clickstream_anomaly.deepar import DeepAR
    >>> counts = np.random.default_rng(2).poisson(25, size=24 * 14).tolist()
    >>> model = DeepAR(24, 24, "H", 1, num_cells=8, num_layers=1, likelihood="negative-binomial", random_state=0)
    >>> body = {"instances": [{"start": "2021-03-01 00:00:00", "target": counts}]}
    >>> len(model.fit([body["instances"][0]]).predict(body)["predictions"][0]["quantiles"]["0.5"])
    24
    """

    def __init__(  # noqa: PLR0913  (SageMaker DeepAR's hyperparameters, stored as given by the estimator)
        self,
        context_length: int,
        prediction_length: int,
        time_freq: str,
        epochs: int,
        num_cells: int = 40,
        num_layers: int = 2,
        likelihood: str = "student-T",
        dropout_rate: float = 0.1,
        learning_rate: float = 1e-3,
        mini_batch_size: int = 128,
        early_stopping_patience: int | None = None,
        num_eval_samples: int = 100,
        random_state: int | None = None,
        calibration_level: float | None = 0.98,
    ) -> None:
        super().__init__(
            time_freq=time_freq,
            context_length=context_length,
            prediction_length=prediction_length,
            epochs=epochs,
            num_cells=num_cells,
            num_layers=num_layers,
            likelihood=likelihood,
            dropout_rate=dropout_rate,
            learning_rate=learning_rate,
            mini_batch_size=mini_batch_size,
            early_stopping_patience=early_stopping_patience,
            num_eval_samples=num_eval_samples,
            random_state=random_state,
            calibration_level=calibration_level,
        )
        self._validate_params()
        self.predictor_: DeepARPredictor | None = None

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any], **local: Any) -> DeepAR:
        """Build from a SageMaker hyperparameter dict (string values allowed; SageMaker-only keys ignored)."""
        hp = validate_hyperparameters(hyperparameters)
        return cls(**{k: hp[k] for k in _HYPERPARAMETERS}, **local)

    # ------------------------------------------------------------------ training
    def fit(self, series: Iterable[Mapping[str, Any]], on_epoch: OnEpoch | None = None) -> DeepAR:
        """Train on SageMaker training records (:meth:`DeepAREstimator.train`); returns ``self``."""
        self.predictor_ = self.train(series, on_epoch=on_epoch)
        return self

    @property
    def predictor(self) -> DeepARPredictor:
        """The fitted predictor; :class:`~clickstream_anomaly.base.NotFittedError` before ``fit``."""
        if self.predictor_ is None:
            raise NotFittedError("this DeepAR model is not fitted; call fit() or load() first")
        return self.predictor_

    # The fitted state, read from the predictor.
    @property
    def freq(self) -> Freq:
        return parse_freq(self.time_freq)

    @property
    def transform(self) -> Transform:
        return self.predictor.transform

    @property
    def params_(self) -> dict[str, np.ndarray]:
        return self.predictor.weights

    @property
    def history_(self) -> list[np.ndarray]:
        return self.predictor.history

    @property
    def series_(self) -> list[dict[str, Any]]:
        return self.predictor.series

    @property
    def result_(self) -> TrainResult:
        return self.predictor.training

    @property
    def calibration_(self) -> BandCalibration:
        return self.predictor.calibration

    @property
    def train_loss_(self) -> list[float]:
        """Mean training negative log-likelihood per epoch (``train:final_loss`` is the last one)."""
        return [] if self.predictor_ is None else list(self.predictor_.training.train_loss)

    def training_end(self, series: int = 0) -> pd.Timestamp:
        """The first timestamp after training series ``series`` (naive UTC)."""
        return self.predictor.training_end(series)

    # ------------------------------------------------------------------ forecasting
    def forecast(
        self,
        instance_record: Mapping[str, Any],
        num_samples: int | None = None,
        random_state: int | None = None,
        *,
        calibrated: bool = True,
    ) -> np.ndarray:
        """Sample paths, ndarray of shape (num_samples, prediction_length): :meth:`DeepARPredictor.forecast`."""
        return self.predictor.forecast(instance_record, num_samples, random_state, calibrated=calibrated)

    def predict(self, request: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
        """A SageMaker DeepAR inference request body -> the response body: :meth:`DeepARPredictor.predict`."""
        return self.predictor.predict(request)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the predictor (:meth:`DeepARPredictor.save`)."""
        self.predictor.save(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DeepAR:
        """A fitted ``DeepAR`` from a saved predictor (this version's or an older ``.npz`` model)."""
        return cls.from_predictor(DeepARPredictor.load(path))

    @classmethod
    def from_predictor(cls, predictor: DeepARPredictor) -> DeepAR:
        """A fitted ``DeepAR`` around ``predictor``, its settings taken from the predictor's record."""
        hp = dict(predictor.hyperparameters)
        hp.setdefault("time_freq", predictor.time_freq)
        hp.setdefault("context_length", str(predictor.context_length))
        hp.setdefault("prediction_length", str(predictor.prediction_length))
        hp.setdefault("epochs", "1")
        model = cls.from_hyperparameters(
            hp, random_state=predictor.random_state, calibration_level=predictor.calibration.level
        )
        model.predictor_ = predictor
        return model
