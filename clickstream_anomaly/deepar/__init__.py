"""Numpy DeepAR: the local twin of SageMaker DeepAR and its forecast-band anomaly detector.

Modules: :mod:`.timefeatures` (frequency, time features, lags), :mod:`.transform` (record -> network
inputs), :mod:`.likelihoods`, :mod:`.network` (LSTM forward/backward), :mod:`.training` (Adam loop),
:mod:`.sampling` (ancestral sampling), :mod:`.calibration` (band calibration), :mod:`.hyperparameters`
(SageMaker's names and ranges), :mod:`.estimator` (``DeepAREstimator``, whose ``train`` returns a
``DeepARPredictor``), :mod:`.predictor`, :mod:`.state` (save and load), :mod:`.model` (``DeepAR``, both in
one object), :mod:`.band` (``forecast_band_detections``, rolling forecasts).
"""

from .band import BAND_SAMPLES, DEFAULT_HIGH, DEFAULT_LOW, forecast_band_detections
from .estimator import DeepAREstimator
from .hyperparameters import validate_hyperparameters
from .model import DeepAR
from .predictor import DeepARPredictor

__all__ = [
    "BAND_SAMPLES",
    "DEFAULT_HIGH",
    "DEFAULT_LOW",
    "DeepAR",
    "DeepAREstimator",
    "DeepARPredictor",
    "forecast_band_detections",
    "validate_hyperparameters",
]
