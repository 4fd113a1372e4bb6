"""Calibration of the DeepAR forecast spread on the held-out tail (clickstream_anomaly.deepar.calibration)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from clickstream_anomaly.deepar import DeepAR
from clickstream_anomaly.deepar.calibration import (
    CALIBRATION_SAMPLES,
    FIT_LEVEL,
    BandCalibration,
    conformal_factor,
    fit_calibration,
    scale_spread,
    side_deviations,
)
from clickstream_anomaly.sagemaker_formats import deepar_record, deepar_request

START = "2021-01-01 00:00:00"
DATA = Path(__file__).parent / "data"


def test_side_deviations_measure_each_side_of_the_band() -> None:
    # per step: 101 evenly spread samples 0..100, so q01 = 1, q50 = 50, q99 = 99
    samples = np.tile(np.linspace(0.0, 100.0, 101)[:, None], (1, 5))
    truth = np.array([50.0, 99.0, 148.0, 25.5, np.nan])
    below, above = side_deviations(samples, truth, 0.98)
    assert above == pytest.approx([0.0, 1.0, 2.0, 0.0])  # NaN truth skipped
    assert below == pytest.approx([0.0, 0.0, 0.0, 0.5])
    # a side of zero width gives a huge (finite) score, not a division error
    _, flat = side_deviations(np.full((10, 1), 3.0), np.array([4.0]), 0.98)
    assert np.isfinite(flat).all() and flat[0] > 1e6


def test_conformal_factor_is_the_split_conformal_quantile() -> None:
    scores = np.arange(1, 145, dtype=float)  # n = 144
    # ceil(145 * 0.98) = 143: the 143rd smallest score; at 0.95 the 138th (the 7th largest)
    assert conformal_factor(scores, 0.98) == 143.0
    assert conformal_factor(scores, 0.95) == 138.0
    assert conformal_factor(scores[::-1], 0.5) == float(math.ceil(145 * 0.5))
    assert conformal_factor(np.array([0.2, 3.5]), 0.98) == 3.5  # n too small: the largest score
    assert conformal_factor(np.array([0.0, 0.2, 0.4]), 0.5) == 1.0  # never narrows by default
    assert conformal_factor(np.array([0.0, 0.2, 0.4]), 0.5, minimum=0.0) == 0.2
    assert conformal_factor(np.array([]), 0.98) == 1.0


def test_scale_spread_keeps_the_median_and_counts() -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(50.0, 5.0, size=(201, 6))
    out = scale_spread(samples, 2.0)
    med = np.median(samples, axis=0)
    assert np.median(out, axis=0) == pytest.approx(med)
    assert out - med == pytest.approx(2.0 * (samples - med))
    assert scale_spread(samples, 1.0) is samples
    two = scale_spread(samples, 1.0, 3.0)
    assert np.where(samples < med, two - samples, 0.0) == pytest.approx(0.0)
    assert np.quantile(two, 0.9, axis=0) - med == pytest.approx(3.0 * (np.quantile(samples, 0.9, axis=0) - med))
    counts = rng.poisson(3.0, size=(101, 5)).astype(float)
    wide = BandCalibration(3.0, 3.0).apply(counts, counts=True)
    assert (wide >= 0).all() and np.array_equal(wide, np.round(wide))


def test_fit_calibration_one_factor_or_one_per_side() -> None:
    samples = np.tile(np.linspace(0.0, 100.0, 101)[:, None], (1, 40))  # q025 = 2.5, q50 = 50, q975 = 97.5
    truth = np.full(40, 50.0)
    truth[:3] = 50.0 + 2 * 47.5  # three values twice as far above the median as the 95 % band reaches
    sym = fit_calibration([samples], [truth], 0.98, fit_level=0.95)
    # ceil(41 * 0.95) = 39 of 40 scores: the 2nd-largest of the three 2.0s
    assert (sym.low, sym.high, sym.level) == (2.0, 2.0, 0.98)
    sides = fit_calibration([samples], [truth], 0.98, fit_level=0.95, symmetric=False)
    assert sides.low == 1.0 and sides.high == 2.0  # only the side that missed widens


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
    cal = model.calibration_
    assert cal.low == cal.high > 1.0 and cal.level == 0.98
    history = deepar_record(START, values[:-24])
    raw = model.forecast(history, CALIBRATION_SAMPLES, calibrated=False)
    band = model.forecast(history, CALIBRATION_SAMPLES)
    assert band == pytest.approx(scale_spread(raw, cal.low))
    # the fit drew these same paths (same seed); with 24 values the 95 % factor is the largest score, so
    # the calibrated 95 % band, and the wider 98 % band, cover every held-out value
    truth = values[-24:]
    for level in (FIT_LEVEL, 0.98):
        lo, hi = np.quantile(band, [(1 - level) / 2, (1 + level) / 2], axis=0)
        assert ((truth >= lo - 1e-9) & (truth <= hi + 1e-9)).all()
    # and the factor is the smallest that does so for the 95 % band
    narrower = scale_spread(raw, 0.99 * cal.low)
    lo, hi = np.quantile(narrower, [0.025, 0.975], axis=0)
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
    path = tmp_path / "calibrated.bin"
    model.save(path)
    loaded = DeepAR.load(path)
    assert loaded.calibration_ == model.calibration_
    assert loaded.get_params() == model.get_params()
    assert loaded.predict(request) == model.predict(request)


def test_calibration_is_off_without_a_held_out_tail_or_when_disabled() -> None:
    values = _sine(24 * 14)
    rec = deepar_record(START, values)
    off = _model(calibration_level=None, epochs=2).fit([rec])
    assert off.calibration_.identity and off.calibration_.level is None
    assert np.array_equal(off.forecast(rec, 20), off.forecast(rec, 20, calibrated=False))
    no_tail = _model(early_stopping_patience=None, epochs=1).fit([rec])
    assert no_tail.calibration_.identity
    # not a SageMaker hyperparameter: never sent to a training job
    assert "calibration_level" not in off.hyperparameters()


def test_version_1_files_load_uncalibrated(tmp_path) -> None:
    with np.load(DATA / "deepar_v2.npz") as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays.pop("header")))
    header["version"] = 1
    header.pop("calibration_factor")
    header["params"].pop("calibration_level")
    old = tmp_path / "v1.npz"
    with open(old, "wb") as fh:
        np.savez(fh, header=np.asarray(json.dumps(header)), **arrays)
    loaded = DeepAR.load(old)
    assert loaded.calibration_.identity and loaded.calibration_level is None
    v2 = DeepAR.load(DATA / "deepar_v2.npz")
    rec = deepar_record(START, np.load(DATA / "deepar_v2_expected.npz")["target"])
    assert np.array_equal(loaded.forecast(rec, 20), v2.forecast(rec, 20, calibrated=False))
