"""DeepAR estimator/predictor: learning, missing values, SageMaker bodies, persistence, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clickstream_anomaly import persist
from clickstream_anomaly.deepar import DeepAR, validate_hyperparameters
from clickstream_anomaly.sagemaker_formats import deepar_record, deepar_request, parse_deepar_response

N_TRAIN = 24 * 30
START = "2021-01-01 00:00:00"


def _sine(n: int = N_TRAIN + 24 * 5, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = 10.0 + 5.0 * np.sin(2 * np.pi * np.arange(n) / 24)
    return clean, clean + rng.normal(0.0, 1.0, n)


def _small(**kw) -> DeepAR:
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
        random_state=0,
    )
    args.update(kw)
    return DeepAR(**args)


@pytest.fixture(scope="module")
def sine_model() -> DeepAR:
    _, noisy = _sine()
    return _small().fit([deepar_record(START, noisy[:N_TRAIN])])


def _track(model: DeepAR, noisy: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """Mean |median - clean sine| and [0.1, 0.9] coverage of the noisy truth over 5 daily origins."""
    errors, covered = [], []
    for k in range(5):
        end = N_TRAIN + 24 * k
        samples = model.forecast(deepar_record(START, noisy[:end]))
        assert samples.shape == (model.num_eval_samples, 24)
        q10, q50, q90 = np.quantile(samples, [0.1, 0.5, 0.9], axis=0)
        errors.append(np.abs(q50 - clean[end : end + 24]).mean())
        truth = noisy[end : end + 24]
        covered.append(((truth >= q10) & (truth <= q90)).mean())
    return float(np.mean(errors)), float(np.mean(covered))


@pytest.mark.slow
def test_learns_noisy_sine(sine_model: DeepAR) -> None:
    clean, noisy = _sine()
    error, coverage = _track(sine_model, noisy, clean)
    # amplitude 5, noise sd 1: a flat forecast is off by ~3.2 on average
    assert error < 0.6
    assert 0.65 <= coverage <= 0.92
    losses = sine_model.train_loss_
    assert len(losses) == 10 and losses[-1] < losses[0]
    # the Gaussian negative log-likelihood of N(0, 1) noise is 1.42: the model got close to it
    assert losses[-1] < 1.6


@pytest.mark.slow
def test_missing_targets_are_ignored_and_imputed() -> None:
    clean, noisy = _sine()
    train = noisy[:N_TRAIN].copy()
    rng = np.random.default_rng(5)
    holes = rng.random(N_TRAIN) < 0.1
    # 10 % of the targets missing, written both ways SageMaker accepts ("NaN" and null)
    record = deepar_record(START, np.where(holes, np.nan, train))
    record["target"] = [
        None if h and i % 2 else v for i, (h, v) in enumerate(zip(holes, record["target"], strict=True))
    ]
    model = _small().fit([record])
    assert np.isfinite(model.train_loss_).all()
    error, coverage = _track(model, noisy, clean)
    assert error < 0.6 and coverage > 0.6
    # a context with missing values is imputed by the model, the forecast stays on the sine
    context = noisy[:N_TRAIN].copy()
    context[-12:-2] = np.nan
    samples = model.forecast(deepar_record(START, context))
    assert np.isfinite(samples).all()
    assert np.abs(np.median(samples, axis=0) - clean[N_TRAIN : N_TRAIN + 24]).mean() < 1.0


def test_predict_returns_sagemaker_response(sine_model: DeepAR) -> None:
    _, noisy = _sine()
    instances = [deepar_record(START, noisy[:N_TRAIN]), deepar_record(START, noisy[: N_TRAIN + 24])]
    request = deepar_request(
        instances, num_samples=30, output_types=("mean", "quantiles", "samples"), quantiles=("0.01", "0.5", "0.99")
    )
    response = sine_model.predict(json.dumps(request))
    assert json.loads(json.dumps(response)) == response  # plain JSON
    assert len(response["predictions"]) == 2
    for pred in response["predictions"]:
        assert set(pred) == {"mean", "quantiles", "samples"}
        assert set(pred["quantiles"]) == {"0.01", "0.5", "0.99"}
        assert len(pred["mean"]) == 24 and len(pred["samples"]) == 30
        q = pred["quantiles"]
        assert all(a <= b <= c for a, b, c in zip(q["0.01"], q["0.5"], q["0.99"], strict=True))
    parsed = parse_deepar_response(response)
    assert parsed[0]["samples"].shape == (30, 24)
    # SageMaker's defaults when the configuration is left out: quantiles 0.1..0.9 only
    default = sine_model.predict({"instances": instances[:1]})["predictions"][0]
    assert set(default) == {"quantiles"} and len(default["quantiles"]) == 9


def test_forecast_is_deterministic_for_a_seed(sine_model: DeepAR) -> None:
    _, noisy = _sine()
    rec = deepar_record(START, noisy[:N_TRAIN])
    a = sine_model.forecast(rec, num_samples=20)
    assert np.array_equal(a, sine_model.forecast(rec, num_samples=20))
    assert not np.array_equal(a, sine_model.forecast(rec, num_samples=20, random_state=99))


def test_save_load_gives_identical_forecasts(sine_model: DeepAR, tmp_path) -> None:
    _, noisy = _sine()
    path = tmp_path / "model.npz"
    sine_model.save(path)
    loaded = DeepAR.load(path)
    assert loaded.get_params() == sine_model.get_params()
    rec = deepar_record(START, noisy[: N_TRAIN + 7])
    assert np.array_equal(loaded.forecast(rec), sine_model.forecast(rec))
    request = deepar_request([rec], output_types=("mean", "quantiles"))
    assert loaded.predict(request) == sine_model.predict(request)
    assert loaded.training_end() == sine_model.training_end()
    state = persist.loads(path.read_bytes(), "deepar.DeepARPredictor")
    assert state.version == 3 and state.meta["transform"]["time_freq"] == "H"
    assert state.meta["calibration"]["low"] == 1.0  # no held-out tail: not calibrated


def test_fit_is_reproducible_and_early_stopping_keeps_best() -> None:
    _, noisy = _sine(24 * 16)
    rec = deepar_record(START, noisy)
    a = _small(epochs=2).fit([rec])
    b = _small(epochs=2).fit([rec])
    assert all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)
    es = _small(epochs=30, early_stopping_patience=2, learning_rate=5e-2).fit([rec])
    res = es.result_
    assert len(res.val_loss) == res.epochs_run
    assert res.best_epoch == int(np.argmin(res.val_loss))
    assert res.epochs_run < 30  # it stopped early...
    assert res.epochs_run - 1 - res.best_epoch == 2  # ...after 2 epochs without improvement


def test_negative_binomial_fits_counts() -> None:
    rng = np.random.default_rng(2)
    counts = rng.poisson(20 + 15 * np.sin(2 * np.pi * np.arange(24 * 20) / 24))
    model = _small(likelihood="negative-binomial", epochs=3).fit([deepar_record(START, counts)])
    samples = model.forecast(deepar_record(START, counts), num_samples=50)
    assert (samples >= 0).all() and np.array_equal(samples, np.round(samples))


# ------------------------------------------------------------------------------------------ bad input
def test_rejects_unsupported_likelihoods() -> None:
    with pytest.raises(ValueError, match="not implemented by the local twin"):
        _small(likelihood="beta")
    with pytest.raises(ValueError, match="unknown likelihood"):
        _small(likelihood="poisson")


@pytest.mark.parametrize("freq", ["10s", "5 min", "hourly", "0H", "T", "", "1.5H"])
def test_rejects_bad_time_freq(freq: str) -> None:
    with pytest.raises(ValueError, match="time_freq"):
        _small(time_freq=freq)


@pytest.mark.parametrize(
    "kw",
    [
        {"num_cells": 0},
        {"num_layers": -1},
        {"epochs": 0},
        {"epochs": 2.5},
        {"dropout_rate": 1.0},
        {"dropout_rate": -0.1},
        {"learning_rate": 0.0},
        {"mini_batch_size": 0},
        {"context_length": 0},
        {"prediction_length": "x"},
        {"early_stopping_patience": 0},
        {"num_eval_samples": 0},
        {"random_state": 1.5},
        {"calibration_level": 1.0},
        {"calibration_level": 0},
    ],
)
def test_rejects_values_sagemaker_rejects(kw: dict) -> None:
    with pytest.raises(ValueError):
        _small(**kw)


def test_rejects_too_short_series() -> None:
    with pytest.raises(ValueError, match="context_length \\+ prediction_length"):
        _small().fit([deepar_record(START, np.ones(400)), deepar_record(START, np.ones(47))])


def test_rejects_fewer_than_300_observations() -> None:
    values = np.ones(320)
    values[:30] = np.nan
    with pytest.raises(ValueError, match="300"):
        _small().fit([deepar_record(START, values)])


def test_rejects_negative_counts_for_negative_binomial() -> None:
    values = np.full(400, 5.0)
    values[10] = -1.0
    with pytest.raises(ValueError, match="negative"):
        _small(likelihood="negative-binomial").fit([deepar_record(START, values)])
    _small(likelihood="gaussian", epochs=1).fit([deepar_record(START, values)])  # fine for gaussian


def test_rejects_bad_records_and_unfitted_use() -> None:
    with pytest.raises(ValueError, match="'start' and 'target'"):
        _small().fit([{"target": [1.0] * 400}])
    with pytest.raises(ValueError, match="dynamic_feat"):
        _small().fit([{**deepar_record(START, np.ones(400)), "dynamic_feat": [[0.0] * 400]}])
    with pytest.raises(ValueError, match="bad start"):
        _small().fit([deepar_record(START, np.ones(400)) | {"start": "yesterday-ish"}])
    with pytest.raises(ValueError, match="not fitted"):
        _small().forecast(deepar_record(START, np.ones(40)))


def test_validate_hyperparameters_types_sagemaker_strings() -> None:
    hp = validate_hyperparameters(
        {
            "context_length": "144",
            "prediction_length": "144",
            "time_freq": "10min",
            "epochs": "20",
            "learning_rate": "5e-4",
            "likelihood": "beta",
            "test_quantiles": "[0.1, 0.5, 0.9]",
            "cardinality": "auto",
            "early_stopping_patience": "5",
        }
    )
    assert hp["context_length"] == 144 and hp["epochs"] == 20 and hp["learning_rate"] == 5e-4
    assert hp["num_cells"] == 40 and hp["num_layers"] == 2 and hp["likelihood"] == "beta"
    assert hp["test_quantiles"] == [0.1, 0.5, 0.9] and hp["early_stopping_patience"] == 5
    with pytest.raises(ValueError, match="missing required"):
        validate_hyperparameters({"context_length": 1, "prediction_length": 1, "time_freq": "H"})
    with pytest.raises(ValueError, match="unknown DeepAR hyperparameter"):
        validate_hyperparameters(
            {"context_length": 1, "prediction_length": 1, "time_freq": "H", "epochs": 1, "num_cellz": 3}
        )
    with pytest.raises(ValueError, match="test_quantiles"):
        validate_hyperparameters(
            {"context_length": 1, "prediction_length": 1, "time_freq": "H", "epochs": 1, "test_quantiles": "[0.5, 1.0]"}
        )
    model = DeepAR.from_hyperparameters(_small().hyperparameters())
    assert model.get_params() == {**_small().get_params(), "random_state": None}


def test_mean_weighted_quantile_loss() -> None:
    from clickstream_anomaly.deepar.model import mean_weighted_quantile_loss

    truth = np.array([10.0, 20.0, np.nan, 30.0])
    exact = np.tile(truth, (5, 1))
    assert mean_weighted_quantile_loss(np.nan_to_num(exact), truth) == 0.0
    # a constant forecast 10 below: QL_q = q * 10 per point -> 2 * 3 * 10 * q / 60, averaged over q
    low = np.nan_to_num(exact) - 10.0
    qs = (0.1, 0.5, 0.9)
    assert mean_weighted_quantile_loss(low, truth, qs) == pytest.approx(np.mean(qs))
    assert np.isnan(mean_weighted_quantile_loss(exact, np.full(4, np.nan)))


def test_early_stopping_needs_room_for_the_held_out_tail() -> None:
    with pytest.raises(ValueError, match="hold out"):
        _small(early_stopping_patience=2).fit([deepar_record(START, np.ones(60))] * 6)
    _small(epochs=1).fit([deepar_record(START, np.ones(60))] * 6)  # fine without early stopping


def test_fit_reports_each_epoch_to_on_epoch():
    import numpy as np

    from clickstream_anomaly.deepar import DeepAR

    t = np.arange(400)
    target = (10 + 5 * np.sin(2 * np.pi * t / 24)).tolist()
    seen = []
    DeepAR(
        context_length=24, prediction_length=12, time_freq="H", epochs=3, num_cells=4, num_layers=1, random_state=0
    ).fit(
        [{"start": "2020-01-01 00:00:00", "target": target}],
        on_epoch=lambda epoch, loss, val: seen.append((epoch, loss, val)),
    )
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert all(np.isfinite(loss) and val is None for _, loss, val in seen)
