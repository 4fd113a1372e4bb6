"""``DeepAR``: the local twin of SageMaker DeepAR (estimator and predictor in one object).

This is our own numpy implementation of the DeepAR method (Salinas et al., 2020) behind SageMaker's
hyperparameter names and JSON bodies. It is not Amazon's code and does not reproduce its numbers: the
lag list, the scaling rule, the missing-value handling and the definition of an epoch are ours and
documented in :mod:`.timefeatures`, :mod:`.transform` and :meth:`DeepAR.fit`. One addition SageMaker does
not have: the forecast's spread is calibrated on the held-out tail (``calibration_level``, see
:mod:`.calibration`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..params import as_int
from ..sagemaker_formats import DEEPAR_OUTPUT_TYPES, deepar_prediction, parse_deepar_request, target_array
from . import network
from .calibration import CALIBRATION_SAMPLES, conformal_factor, normalised_deviations, scale_spread
from .likelihoods import SAGEMAKER_LIKELIHOODS, get_likelihood
from .timefeatures import lags_for, parse_freq, time_index
from .training import TrainResult, train
from .transform import Transform, context_scale, fill_missing

FORMAT_NAME = "clickstream-anomaly-deepar"
FORMAT_VERSION = 2  # 2: calibration_factor in the header (version 1 files load with factor 1)
MIN_OBSERVATIONS = 300
_MAX_PRECOMPUTED = 30_000_000  # float64 input values kept in memory for all training windows

_REQUIRED = ("context_length", "prediction_length", "time_freq", "epochs")
_DEFAULTS: dict[str, Any] = {
    "likelihood": "student-T",
    "num_cells": 40,
    "num_layers": 2,
    "dropout_rate": 0.1,
    "learning_rate": 1e-3,
    "mini_batch_size": 128,
    "early_stopping_patience": None,
    "num_eval_samples": 100,
    "num_dynamic_feat": "auto",
    "cardinality": "auto",
    "embedding_dimension": 10,
    "test_quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
}


def _int(name: str, value: Any, minimum: int = 1) -> int:
    return as_int(name, value, minimum)


def _float(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    bad = (
        not math.isfinite(number)
        or number < lo
        or number > hi
        or (lo_open and number == lo)
        or (hi_open and number == hi)
    )
    if bad:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be in {rng}, got {value!r}")
    return number


def _json_list(name: str, value: Any) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{name} must be a JSON array, got {value!r}") from None
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be an array, got {value!r}")
    return list(value)


def validate_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Check SageMaker DeepAR hyperparameters (SageMaker's names; values may be strings) and type them.

    Returns a new dict holding every hyperparameter, defaults filled in, as Python values
    (``int``, ``float``, ``str``, ``list`` or ``None``). Raises ``ValueError`` naming the first bad or
    unknown key. Accepts everything SageMaker accepts, including likelihoods the local twin lacks.
    """
    hp = dict(hyperparameters)
    unknown = sorted(set(hp) - set(_REQUIRED) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown DeepAR hyperparameter(s): {', '.join(unknown)}")
    missing = [k for k in _REQUIRED if hp.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing required DeepAR hyperparameter(s): {', '.join(missing)}")
    out: dict[str, Any] = dict(_DEFAULTS)
    out.update({k: v for k, v in hp.items()})
    out["context_length"] = _int("context_length", out["context_length"])
    out["prediction_length"] = _int("prediction_length", out["prediction_length"])
    parse_freq(out["time_freq"])
    out["time_freq"] = out["time_freq"].strip()
    out["epochs"] = _int("epochs", out["epochs"])
    if out["likelihood"] not in SAGEMAKER_LIKELIHOODS:
        raise ValueError(
            f"unknown likelihood {out['likelihood']!r}; SageMaker DeepAR accepts {', '.join(SAGEMAKER_LIKELIHOODS)}"
        )
    out["num_cells"] = _int("num_cells", out["num_cells"])
    out["num_layers"] = _int("num_layers", out["num_layers"])
    out["dropout_rate"] = _float("dropout_rate", out["dropout_rate"], 0.0, 1.0, hi_open=True)
    out["learning_rate"] = _float("learning_rate", out["learning_rate"], 0.0, 1.0, lo_open=True)
    out["mini_batch_size"] = _int("mini_batch_size", out["mini_batch_size"])
    if out["early_stopping_patience"] not in (None, ""):
        out["early_stopping_patience"] = _int("early_stopping_patience", out["early_stopping_patience"])
    else:
        out["early_stopping_patience"] = None
    out["num_eval_samples"] = _int("num_eval_samples", out["num_eval_samples"])
    out["embedding_dimension"] = _int("embedding_dimension", out["embedding_dimension"])
    ndf = out["num_dynamic_feat"]
    if ndf not in ("auto", "ignore", ""):
        out["num_dynamic_feat"] = _int("num_dynamic_feat", ndf, minimum=0)
    card = out["cardinality"]
    if card not in ("auto", "ignore", ""):
        out["cardinality"] = [_int("cardinality", c) for c in _json_list("cardinality", card)]
    qs = _json_list("test_quantiles", out["test_quantiles"])
    out["test_quantiles"] = [_float("test_quantiles", q, 0.0, 1.0, lo_open=True, hi_open=True) for q in qs]
    return out


class DeepAR:
    """Autoregressive LSTM forecaster with a likelihood head, trained on random windows of the series.

    Parameters carry SageMaker DeepAR's names, defaults and accepted values; ``random_state`` (int or
    None) seeds initialisation, training and every forecast (the same seed gives the same samples).
    ``calibration_level`` (not a SageMaker hyperparameter; float in (0, 1) or None, default 0.98, the
    central level of the [0.01, 0.99] band) calibrates the forecast spread on the held-out tail after
    training (:mod:`.calibration`): the fitted ``calibration_factor_`` (at least 1) multiplies every
    forecast's spread around its per-step median. A tail is held out only with
    ``early_stopping_patience``; without it, or with ``calibration_level=None``, the factor is 1 (the
    raw DeepAR forecast).
    Unsupported settings raise ``ValueError`` at construction.
    """

    def __init__(
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
        hp = validate_hyperparameters(
            {
                "context_length": context_length,
                "prediction_length": prediction_length,
                "time_freq": time_freq,
                "epochs": epochs,
                "num_cells": num_cells,
                "num_layers": num_layers,
                "likelihood": likelihood,
                "dropout_rate": dropout_rate,
                "learning_rate": learning_rate,
                "mini_batch_size": mini_batch_size,
                "early_stopping_patience": early_stopping_patience,
                "num_eval_samples": num_eval_samples,
            }
        )
        self._likelihood = get_likelihood(hp["likelihood"])
        self.context_length: int = hp["context_length"]
        self.prediction_length: int = hp["prediction_length"]
        self.time_freq: str = hp["time_freq"]
        self.epochs: int = hp["epochs"]
        self.num_cells: int = hp["num_cells"]
        self.num_layers: int = hp["num_layers"]
        self.likelihood: str = hp["likelihood"]
        self.dropout_rate: float = hp["dropout_rate"]
        self.learning_rate: float = hp["learning_rate"]
        self.mini_batch_size: int = hp["mini_batch_size"]
        self.early_stopping_patience: int | None = hp["early_stopping_patience"]
        self.num_eval_samples: int = hp["num_eval_samples"]
        if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, int)):
            raise ValueError(f"random_state must be an int or None, got {random_state!r}")
        self.random_state = random_state
        if calibration_level is not None:
            calibration_level = _float("calibration_level", calibration_level, 0.0, 1.0, lo_open=True, hi_open=True)
        self.calibration_level: float | None = calibration_level
        self.calibration_factor_: float = 1.0
        self.freq = parse_freq(self.time_freq)
        self.transform = Transform(self.freq, self.context_length, self.prediction_length, lags_for(self.freq))
        self.params_: network.Params | None = None
        self.series_: list[dict[str, Any]] = []
        self.history_: list[np.ndarray] = []
        self.result_: TrainResult | None = None

    # ------------------------------------------------------------------ settings
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (SageMaker names plus ``random_state``)."""
        return {
            k: getattr(self, k)
            for k in (
                "context_length",
                "prediction_length",
                "time_freq",
                "epochs",
                "num_cells",
                "num_layers",
                "likelihood",
                "dropout_rate",
                "learning_rate",
                "mini_batch_size",
                "early_stopping_patience",
                "num_eval_samples",
                "random_state",
                "calibration_level",
            )
        }

    def hyperparameters(self) -> dict[str, str]:
        """The settings as a SageMaker training job takes them (string values, unset ones left out)."""
        params = self.get_params()
        params.pop("random_state")
        params.pop("calibration_level")
        return {k: str(v) for k, v in params.items() if v is not None}

    @classmethod
    def from_hyperparameters(
        cls, hyperparameters: Mapping[str, Any], random_state: int | None = None, calibration_level: float | None = 0.98
    ) -> DeepAR:
        """Build from a SageMaker hyperparameter dict (string values allowed; SageMaker-only keys ignored)."""
        hp = validate_hyperparameters(hyperparameters)
        keys = (
            "context_length",
            "prediction_length",
            "time_freq",
            "epochs",
            "num_cells",
            "num_layers",
            "likelihood",
            "dropout_rate",
            "learning_rate",
            "mini_batch_size",
            "early_stopping_patience",
            "num_eval_samples",
        )
        return cls(**{k: hp[k] for k in keys}, random_state=random_state, calibration_level=calibration_level)

    # ------------------------------------------------------------------ training
    def _check_series(self, series: Iterable[Mapping[str, Any]]) -> list[tuple[pd.Timestamp, np.ndarray]]:
        records = list(series)
        if not records:
            raise ValueError("no training series")
        need = self.context_length + self.prediction_length
        out = []
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping) or "start" not in rec or "target" not in rec:
                raise ValueError(f"series {i}: a DeepAR record needs 'start' and 'target'")
            for key in ("cat", "dynamic_feat"):
                if rec.get(key) not in (None, [], ""):
                    raise ValueError(f"series {i}: '{key}' is not supported by the local DeepAR twin")
            start = _parse_start(rec["start"], i)
            try:
                values = target_array(dict(rec))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"series {i}: bad target value: {exc}") from exc
            if np.isinf(values).any():
                raise ValueError(f"series {i}: target contains infinity")
            if len(values) < need:
                raise ValueError(
                    f"series {i} has {len(values)} points; DeepAR needs at least context_length + "
                    f"prediction_length = {need}"
                )
            try:
                self._likelihood.check_targets(values)
            except ValueError as exc:
                raise ValueError(f"series {i}: {exc}") from exc
            out.append((start, values))
        observed = sum(int((~np.isnan(v)).sum()) for _, v in out)
        if observed < MIN_OBSERVATIONS:
            raise ValueError(
                f"the training data has {observed} observed values in total; SageMaker DeepAR "
                f"needs at least {MIN_OBSERVATIONS}"
            )
        return out

    def fit(
        self, series: Iterable[Mapping[str, Any]], on_epoch: Callable[[int, float, float | None], None] | None = None
    ) -> DeepAR:
        """Train on SageMaker training records (``{"start", "target"}``, ``"NaN"``/null for missing).

        Training windows span ``context_length + prediction_length`` steps and start anywhere that
        leaves the largest lag inside the series (or at 0 for short series); one epoch visits each
        window once, in shuffled batches of ``mini_batch_size``. The loss is the mean negative
        log-likelihood over observed (non-missing) target values of both ranges, with teacher forcing.
        With ``early_stopping_patience`` the last ``prediction_length`` points of every series are held
        out and forecast after every epoch (``num_eval_samples`` sample paths, as SageMaker's test
        channel): the validation loss is their mean weighted quantile loss at 0.1..0.9 (SageMaker's
        ``test:mean_wQuantileLoss``). Training stops after that many epochs without improvement and
        keeps the best parameters. (A teacher-forced likelihood on the tail kept improving while the
        sampled day-ahead forecasts drifted, so we stop on the forecasts themselves.)
        Then, with ``calibration_level``, the kept parameters forecast the held-out tails once more
        (``CALIBRATION_SAMPLES`` paths) and ``calibration_factor_`` is fitted on them by split conformal
        prediction (:mod:`.calibration`); it is 1 when no tail is held out.
        Returns ``self``.
        """
        data = self._check_series(series)
        rng = np.random.default_rng(self.random_state)
        tr = self.transform
        T = self.context_length + self.prediction_length
        P = self.prediction_length
        hold = P if self.early_stopping_patience is not None else 0
        prepared = [tr.prepare(start, values) for start, values in data]
        ids = []
        for s, (_, values) in enumerate(data):
            hi = len(values) - hold - T
            if hi < 0:
                continue
            lo = min(tr.max_lag, hi)
            ids.extend((s, t0) for t0 in range(lo, hi + 1))
        if not ids:
            raise ValueError(
                "series are too short to hold out prediction_length points for early stopping: "
                f"need context_length + 2 * prediction_length = {T + P} points"
            )
        win = np.asarray(ids, dtype="int64")
        lk = self._likelihood
        params = network.init_params(tr.n_inputs, self.num_cells, self.num_layers, lk.n_params, rng)

        def arrays(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            X = np.empty((T, len(rows), tr.n_inputs))
            Z = np.empty((T, len(rows)))
            scale = np.empty(len(rows))
            for j, (s, t0) in enumerate(rows):
                X[:, j], scale[j] = tr.window(prepared[s], int(t0), T)
                Z[:, j] = prepared[s].values[t0 : t0 + T]
            return X, Z, scale

        cache = arrays(win) if len(win) * T * tr.n_inputs <= _MAX_PRECOMPUTED else None

        def batch(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if cache is not None:
                return cache[0][:, idx], cache[1][:, idx], cache[2][idx]
            return arrays(win[idx])

        def nll_grad(p: network.Params, X, Z, scale, weight, zoneout):
            raw, fwd = network.forward(p, X, zoneout)
            mask = ~np.isnan(Z) & (weight > 0)
            count = max(int(mask.sum()), 1)
            nll, draw = lk.nll(raw, np.where(mask, Z, 0.0), scale[None, :])
            loss = float((nll * mask).sum() / count)
            return loss, draw * (mask / count)[..., None], fwd

        ones = np.ones((T, 1))

        def loss_fn(p: network.Params, idx: np.ndarray, r: np.random.Generator):
            X, Z, scale = batch(idx)
            zo = network.zoneout_masks(p, T, len(idx), self.dropout_rate, r)
            loss, d_raw, fwd = nll_grad(p, X, Z, scale, ones, zo)
            return loss, network.backward(p, fwd, d_raw)

        val_fn = None
        if hold:

            def val_fn(p: network.Params) -> float:
                seed = 0 if self.random_state is None else self.random_state
                losses = []
                for start, values in data:
                    paths = self._sample_paths(
                        p, start, values[:-P], self.num_eval_samples, np.random.default_rng(seed)
                    )
                    losses.append(mean_weighted_quantile_loss(paths, values[-P:]))
                return float(np.nanmean(losses)) if not np.isnan(losses).all() else np.inf

        with network.single_threaded_blas():
            self.result_ = train(
                params,
                loss_fn,
                len(win),
                epochs=self.epochs,
                batch_size=self.mini_batch_size,
                learning_rate=self.learning_rate,
                rng=rng,
                val_fn=val_fn,
                patience=self.early_stopping_patience,
                on_epoch=on_epoch,
            )
        self.params_ = params
        self.calibration_factor_ = 1.0
        if hold and self.calibration_level is not None:
            seed = 0 if self.random_state is None else self.random_state
            scores = [
                normalised_deviations(
                    self._sample_paths(params, start, values[:-P], CALIBRATION_SAMPLES, np.random.default_rng(seed)),
                    values[-P:],
                    self.calibration_level,
                )
                for start, values in data
            ]
            self.calibration_factor_ = conformal_factor(np.concatenate(scores), self.calibration_level)
        keep = tr.max_lag + self.context_length
        self.series_ = [{"start": _start_text(start), "length": len(values)} for start, values in data]
        self.history_ = [values[-keep:].copy() for _, values in data]
        return self

    @property
    def train_loss_(self) -> list[float]:
        """Mean training negative log-likelihood per epoch (``train:final_loss`` is the last one)."""
        return [] if self.result_ is None else list(self.result_.train_loss)

    def training_end(self, series: int = 0) -> pd.Timestamp:
        """The first timestamp after training series ``series`` (naive UTC)."""
        self._check_fitted()
        info = self.series_[series]
        return time_index(info["start"], info["length"] + 1, self.freq)[-1]

    # ------------------------------------------------------------------ forecasting
    def _check_fitted(self) -> None:
        if self.params_ is None:
            raise ValueError("this DeepAR model is not fitted; call fit() or load() first")

    def forecast(
        self,
        instance_record: Mapping[str, Any],
        num_samples: int | None = None,
        random_state: int | None = None,
        *,
        calibrated: bool = True,
    ) -> np.ndarray:
        """Sample paths for the ``prediction_length`` steps after the instance's target.

        The whole target is the history (lags reach back further than ``context_length``); the network
        is run over its last ``context_length`` points, missing ones imputed with the model's mean, then
        ``num_samples`` paths (default ``num_eval_samples``) are drawn step by step, each draw fed back as
        the next input. ``random_state`` defaults to the model's. With ``calibrated`` (default) the
        spread of the paths around their per-step median is multiplied by ``calibration_factor_``
        (then rounded and clipped at 0 for ``negative-binomial``); ``calibrated=False`` gives the raw
        paths.
        Returns ndarray of shape (num_samples, prediction_length) in the target's units.
        """
        self._check_fitted()
        if (
            not isinstance(instance_record, Mapping)
            or "start" not in instance_record
            or "target" not in instance_record
        ):
            raise ValueError("a DeepAR instance needs 'start' and 'target'")
        for key in ("cat", "dynamic_feat"):
            if instance_record.get(key) not in (None, [], ""):
                raise ValueError(f"'{key}' is not supported by the local DeepAR twin")
        start = _parse_start(instance_record["start"], 0)
        values = target_array(dict(instance_record))
        if np.isinf(values).any():
            raise ValueError("instance target contains infinity")
        n_samples = self.num_eval_samples if num_samples is None else _int("num_samples", num_samples)
        seed = self.random_state if random_state is None else random_state
        rng = np.random.default_rng(seed)
        samples = self._sample_paths(self.params_, start, values, n_samples, rng)
        if not calibrated:
            return samples
        return scale_spread(samples, self.calibration_factor_, counts=self._likelihood.counts)

    def _sample_paths(
        self, params: network.Params, start: pd.Timestamp, values: np.ndarray, n_samples: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(n_samples, prediction_length) sample paths after ``values`` (see :meth:`forecast`)."""
        tr, lk, P = self.transform, self._likelihood, self.prediction_length
        n = len(values)
        series = tr.prepare(start, values, horizon=P)
        t0 = max(n - self.context_length, 0)
        scale = context_scale(values[t0:])
        work = np.concatenate([fill_missing(values), np.zeros(P)])[None, :]
        with network.single_threaded_blas():
            state = network.zero_state(params, 1)
            for t in range(t0, n):
                raw, state = network.step(params, tr.step_inputs(work, t, series.tf[t], scale), state)
                if np.isnan(values[t]):
                    work[0, t] = lk.mean(raw, scale)[0]
            paths = np.repeat(work, n_samples, axis=0)
            state = [(np.repeat(h, n_samples, axis=0), np.repeat(c, n_samples, axis=0)) for h, c in state]
            for t in range(n, n + P):
                raw, state = network.step(params, tr.step_inputs(paths, t, series.tf[t], scale), state)
                paths[:, t] = lk.sample(raw, np.float64(scale), rng)
        return paths[:, n:]

    def predict(self, request: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
        """A SageMaker DeepAR inference request body -> the response body (one prediction per instance)."""
        instances, conf = parse_deepar_request(request if isinstance(request, str | bytes) else dict(request))
        bad = [t for t in conf["output_types"] if t not in DEEPAR_OUTPUT_TYPES]
        if bad:
            raise ValueError(f"unknown DeepAR output type(s) {bad}; use {list(DEEPAR_OUTPUT_TYPES)}")
        num_samples = _int("num_samples", conf["num_samples"])
        return {"predictions": [deepar_prediction(self.forecast(inst, num_samples), conf) for inst in instances]}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write one ``.npz`` file: the weights, the training tails, and a JSON header with a version
        (holding the settings, the training losses and ``calibration_factor_``)."""
        self._check_fitted()
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "params": self.get_params(),
            "lags": list(self.transform.lags),
            "series": self.series_,
            "train_loss": self.train_loss_,
            "calibration_factor": self.calibration_factor_,
        }
        arrays = {f"param_{k}": v for k, v in self.params_.items()}
        arrays.update({f"history_{i}": h for i, h in enumerate(self.history_)})
        with open(path, "wb") as fh:
            np.savez(fh, header=np.asarray(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> DeepAR:
        """Read a model written by :meth:`save`; ``ValueError`` for another format or a newer version."""
        with np.load(path, allow_pickle=False) as data:
            if "header" not in data:
                raise ValueError(f"{path}: not a saved DeepAR model (no header)")
            header = json.loads(str(data["header"]))
            if header.get("format") != FORMAT_NAME:
                raise ValueError(f"{path}: not a saved DeepAR model (format {header.get('format')!r})")
            if int(header.get("version", 0)) > FORMAT_VERSION:
                raise ValueError(
                    f"{path}: model format version {header['version']} is newer than this code's ({FORMAT_VERSION})"
                )
            params = {"calibration_level": None, **header["params"]}  # version 1: fitted without calibration
            model = cls(**params)
            model.calibration_factor_ = float(header.get("calibration_factor", 1.0))
            if tuple(header["lags"]) != model.transform.lags:
                raise ValueError(
                    f"{path}: saved lags {header['lags']} differ from this code's {list(model.transform.lags)}"
                )
            model.params_ = {k[len("param_") :]: data[k] for k in data.files if k.startswith("param_")}
            model.series_ = list(header["series"])
            model.history_ = [data[f"history_{i}"] for i in range(len(model.series_))]
            model.result_ = TrainResult(model.params_, train_loss=list(header.get("train_loss", [])))
        return model


def mean_weighted_quantile_loss(
    samples: np.ndarray, truth: np.ndarray, quantiles: Iterable[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
) -> float:
    """SageMaker's ``test:mean_wQuantileLoss``: mean over ``quantiles`` of ``2 sum |QL_q| / sum |y|``.

    ``samples`` (n_samples, horizon), ``truth`` (horizon,); missing truth values are skipped. NaN if
    nothing is observed or the observed values sum to 0.
    """
    obs = ~np.isnan(truth)
    y = truth[obs]
    denom = np.abs(y).sum()
    if not obs.any() or denom == 0:
        return float("nan")
    qs = list(quantiles)
    pred = np.quantile(samples[:, obs], qs, axis=0)
    diff = y[None, :] - pred
    tau = np.asarray(qs)[:, None]
    return float(np.mean(2.0 * np.maximum(tau * diff, (tau - 1.0) * diff).sum(axis=1) / denom))


def _parse_start(value: Any, index: int) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"series {index}: bad start {value!r}: {exc}") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"series {index}: bad start {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _start_text(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")
