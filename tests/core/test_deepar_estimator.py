"""DeepAR the scikit-learn way: the estimator only stores, validates from one table in ``train``, returns a
predictor; the estimator and the detector clone; the predictor saves through the one state container and
old ``.npz`` models still load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from clickstream_anomaly import persist
from clickstream_anomaly.base import NotFittedError
from clickstream_anomaly.deepar import DeepAR, DeepAREstimator, DeepARPredictor
from clickstream_anomaly.deepar.state import KIND, VERSION
from clickstream_anomaly.detectors import DeepARDetector
from clickstream_anomaly.sagemaker_formats import deepar_record
from clickstream_anomaly.validation import InvalidParameterError

DATA = Path(__file__).parent / "data"
START = "2021-01-01 00:00:00"


def _counts(n: int = 24 * 16, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(20 + 10 * np.sin(2 * np.pi * np.arange(n) / 24)).astype(float)


def _estimator(**kw) -> DeepAREstimator:
    args = dict(time_freq="H", epochs=2, num_cells=8, num_layers=1, likelihood="negative-binomial", random_state=0)
    return DeepAREstimator(**(args | kw))


def test_constructor_only_stores_and_the_parameters_round_trip() -> None:
    est = DeepAREstimator(num_cells=0, likelihood="nope", time_freq="7sec")  # no validation here
    assert vars(est) == est.get_params()
    assert set(est.get_params()) >= {"context_length", "prediction_length", "num_cells", "epochs", "likelihood"}
    twin = clone(_estimator(early_stopping_patience=3))
    assert twin.get_params() == _estimator(early_stopping_patience=3).get_params()
    with pytest.raises(InvalidParameterError, match="'num_cells' parameter of DeepAREstimator"):
        est.set_params(likelihood="gaussian", time_freq="H").train([deepar_record(START, _counts())])


def test_train_returns_a_predictor_and_is_reproducible() -> None:
    rec = deepar_record(START, _counts())
    a, b = _estimator().train([rec]), _estimator().train([rec])
    assert isinstance(a, DeepARPredictor)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert np.array_equal(a.forecast(rec, 30), b.forecast(rec, 30))
    # lengths follow the frequency: a day of hourly steps
    assert (a.context_length, a.prediction_length) == (24, 24)
    # features whose cycle is longer than 16 days of data are left out
    assert a.transform.feature_names == ("hour_of_day", "day_of_week")
    assert a.hyperparameters["context_length"] == "24" and a.hyperparameters["likelihood"] == "negative-binomial"


def test_detector_clones_and_validates_when_fitted() -> None:
    det = DeepARDetector(epochs=3, train_days=9.5, random_state=4, on_epoch=print)
    twin = clone(det)
    assert twin.get_params() == det.get_params() and not hasattr(twin, "model_")
    assert "epochs=3" in repr(det)
    with pytest.raises(InvalidParameterError, match="'low' parameter of DeepARDetector"):
        DeepARDetector(low=0.7).fit(None)


def test_predictor_saves_in_the_state_container(tmp_path) -> None:
    rec = deepar_record(START, _counts())
    pred = _estimator(early_stopping_patience=1).train([rec])
    path = tmp_path / "deepar.bin"
    pred.save(path)
    assert persist.peek_kind(path.read_bytes()) == (KIND, VERSION)
    loaded = DeepARPredictor.load(path)
    assert np.array_equal(loaded.forecast(rec, 40), pred.forecast(rec, 40))
    assert loaded.calibration == pred.calibration and loaded.transform == pred.transform
    assert loaded.training.val_loss == pred.training.val_loss
    assert pred.to_bytes() == loaded.to_bytes()  # deterministic bytes
    with pytest.raises(persist.StateFormatError, match=r"expected 'deepar\.DeepARPredictor'"):
        DeepARPredictor.from_bytes(persist.dumps("other", 1))


def test_a_version_2_npz_model_still_loads_and_forecasts_as_it_did() -> None:
    expected = np.load(DATA / "deepar_v2_expected.npz")
    model = DeepAR.load(DATA / "deepar_v2.npz")
    rec = deepar_record(START, expected["target"])
    assert np.array_equal(model.forecast(rec, num_samples=50), expected["samples"])
    assert model.calibration_.low == model.calibration_.high > 1.0 and model.calibration_level == 0.98
    with pytest.raises(NotFittedError):
        DeepAR(24, 24, "H", 1).forecast(rec)
