"""Numpy DeepAR: the local twin of SageMaker DeepAR and its forecast-band anomaly detector.

Modules: :mod:`.timefeatures` (frequency, time features, lags), :mod:`.transform` (record -> network
inputs), :mod:`.likelihoods`, :mod:`.network` (LSTM forward/backward), :mod:`.training` (Adam loop),
:mod:`.model` (``DeepAR``), :mod:`.band` (``forecast_band_detections``).
"""

from .band import forecast_band_detections
from .model import DeepAR, validate_hyperparameters

__all__ = ["DeepAR", "forecast_band_detections", "validate_hyperparameters"]
