"""Split-conformal calibration of the DeepAR forecast spread (clickstream_anomaly.deepar.calibration)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from clickstream_anomaly.deepar import DeepAR
from clickstream_anomaly.deepar.calibration import (
    CALIBRATION_SAMPLES,
    conformal_factor,
    normalised_deviations,
    scale_spread,
)
from clickstream_anomaly.sagemaker_formats import deepar_record, deepar_request

START = "2021-01-01 00:00:00"


def test_normalised_deviations_measure_each_side_of_the_band() -> None:
    # per step: 101 evenly spread samples 0..100, so q01 = 1, q50 = 50, q99 = 99
    samples = np.tile(np.linspace(0.0, 100.0, 101)[:, None], (1, 5))
    truth = np.array([50.0, 99.0, 148.0, 25.5, np.nan])
    s = normalised_deviations(samples, truth, 0.98)
    assert s == pytest.approx([0.0, 1.0, 2.0, 0.5])  # NaN truth skipped
    # a side of zero width gives a huge (finite) score, not a division error
    flat = normalised_deviations(np.full((10, 1), 3.0), np.array([4.0]), 0.98)
    assert np.isfinite(flat).all() and flat[0] > 1e6


def test_conformal_factor_is_the_split_conformal_quantile() -> None:
    scores = np.arange(1, 145, dtype=float)  # n = 144
    # ceil(145 * 0.98) = 143: the 143rd smallest score
    assert conformal_factor(scores, 0.98) == 143.0
    assert conformal_factor(scores[::-1], 0.5) == float(math.ceil(145 * 0.5))
    assert conformal_factor(np.array([0.2, 3.5]), 0.98) == 3.5  # n too small: the largest score
    assert conformal_factor(np.array([0.0, 0.2, 0.4]), 0.5) == 1.0  # never narrows
    assert conformal_factor(np.array([]), 0.98) == 1.0


def test_scale_spread_keeps_the_median_and_counts() -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(50.0, 5.0, size=(201, 6))
    out = scale_spread(samples, 2.0)
    med = np.median(samples, axis=0)
    assert np.median(out, axis=0) == pytest.approx(med)
    assert out - med == pytest.approx(2.0 * (samples - med))
    assert scale_spread(samples, 1.0) is samples
    counts = rng.poisson(3.0, size=(101, 5)).astype(float)
    wide = scale_spread(counts, 3.0, counts=True)
    assert (wide >= 0).all() and np.array_equal(wide, np.round(wide))


def _sine(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10.0 + 5.0 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0.0, 1.0, n)


def _model(**kw) -> DeepAR:
    args = dict(
        context_length=24,
        prediction_length=24,
        time_freq="H",
        epochs=10,
        num_cells=16,
        num_layers=1,
        likelihood="gaussian",
        dropout_rate=0.0,
        learning_rate=5e-3,
        mini_batch_size=32,
        early_stopping_patience=3,
        random_state=0,
    )
    args.update(kw)
    return DeepAR(**args)


@pytest.fixture(scope="module")
def calibrated() -> tuple[DeepAR, np.ndarray]:
    # three held-out values of the last day jump 8 (noise sd 1) above the sine, so the raw band misses
    # them and the calibration has something to fix
    values = _sine(24 * 30)
    values[-12:-9] += 8.0
    return _model().fit([deepar_record(START, values)]), values


def test_fit_calibrates_the_band_on_the_held_out_tail(calibrated) -> None:
    model, values = calibrated
    c = model.calibration_factor_
    assert np.isfinite(c) and c > 1.0
    history = deepar_record(START, values[:-24])
    raw = model.forecast(history, CALIBRATION_SAMPLES, calibrated=False)
    band = model.forecast(history, CALIBRATION_SAMPLES)
    assert band == pytest.approx(scale_spread(raw, c))
    # the fit drew these same paths (same seed), so by construction the calibrated 98 % band covers at
    # least ceil(25 * 0.98) = 25 of the 24 held-out values, i.e. all of them
    lo, hi = np.quantile(band, [0.01, 0.99], axis=0)
    truth = values[-24:]
    assert ((truth >= lo - 1e-9) & (truth <= hi + 1e-9)).all()
    # and the factor is the smallest that does so: a slightly narrower band misses a value
    narrower = scale_spread(raw, 0.99 * c)
    lo, hi = np.quantile(narrower, [0.01, 0.99], axis=0)
    assert not ((truth >= lo) & (truth <= hi)).all()


def test_calibration_flows_into_the_sagemaker_response_and_survives_save(calibrated, tmp_path) -> None:
    model, values = calibrated
    rec = deepar_record(START, values)
    request = deepar_request(
        [rec], num_samples=50, output_types=("mean", "quantiles", "samples"), quantiles=("0.01", "0.5", "0.99")
    )
    pred = model.predict(request)["predictions"][0]
    assert set(pred) == {"mean", "quantiles", "samples"}
    assert np.asarray(pred["samples"]) == pytest.approx(model.forecast(rec, 50))
    path = tmp_path / "calibrated.npz"
    model.save(path)
    loaded = DeepAR.load(path)
    assert loaded.calibration_factor_ == model.calibration_factor_
    assert loaded.get_params() == model.get_params()
    assert loaded.predict(request) == model.predict(request)
    with np.load(path) as data:
        assert json.loads(str(data["header"]))["calibration_factor"] == model.calibration_factor_


def test_calibration_is_off_without_a_held_out_tail_or_when_disabled() -> None:
    values = _sine(24 * 14)
    rec = deepar_record(START, values)
    off = _model(calibration_level=None, epochs=2).fit([rec])
    assert off.calibration_factor_ == 1.0
    assert np.array_equal(off.forecast(rec, 20), off.forecast(rec, 20, calibrated=False))
    no_tail = _model(early_stopping_patience=None, epochs=1).fit([rec])
    assert no_tail.calibration_factor_ == 1.0
    # not a SageMaker hyperparameter: never sent to a training job
    assert "calibration_level" not in off.hyperparameters()


def test_version_1_files_load_uncalibrated(calibrated, tmp_path) -> None:
    model, values = calibrated
    path = tmp_path / "v2.npz"
    model.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays.pop("header")))
    header["version"] = 1
    header.pop("calibration_factor")
    header["params"].pop("calibration_level")
    old = tmp_path / "v1.npz"
    with open(old, "wb") as fh:
        np.savez(fh, header=np.asarray(json.dumps(header)), **arrays)
    loaded = DeepAR.load(old)
    assert loaded.calibration_factor_ == 1.0 and loaded.calibration_level is None
    rec = deepar_record(START, values)
    assert np.array_equal(loaded.forecast(rec, 20), model.forecast(rec, 20, calibrated=False))
