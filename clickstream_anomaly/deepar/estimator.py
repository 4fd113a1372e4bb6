"""``DeepAREstimator``: SageMaker DeepAR's hyperparameters and the training run that returns a predictor.

This is our own numpy implementation of the DeepAR method (Salinas et al., 2020) behind SageMaker's
hyperparameter names and JSON bodies. It is not Amazon's code and does not reproduce its numbers: the
lag list, the scaling rule, the missing-value handling, the definition of an epoch and the band
calibration are ours and documented in :mod:`.timefeatures`, :mod:`.transform`, :mod:`.calibration`
and :meth:`DeepAREstimator.train`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..base import BaseEstimator
from ..sagemaker_formats import target_array
from ..validation import Interval, check_random_state
from ..windowspec import DEFAULT_WINDOW
from . import network
from .calibration import CALIBRATION_SAMPLES, FIT_LEVEL, BandCalibration, fit_calibration
from .hyperparameters import SAGEMAKER_CONSTRAINTS, check_time_freq, validate_hyperparameters
from .likelihoods import Likelihood, get_likelihood
from .metrics import mean_weighted_quantile_loss
from .predictor import DeepARPredictor, parse_start
from .sampling import sample_paths
from .timefeatures import features_for_span, lags_for, parse_freq, season_length, steps_per_day, time_freq_for
from .training import TrainResult, train
from .transform import Transform

#: SageMaker's minimum number of observed training values.
MIN_OBSERVATIONS = 300
#: DeepAR's ``time_freq`` for the project's default window (10 minutes).
DEFAULT_TIME_FREQ = time_freq_for(DEFAULT_WINDOW)
_MAX_PRECOMPUTED = 30_000_000  # input values kept in memory for all training windows
#: The network trains in float32 (1.6x faster than float64 here); the likelihood and the loss are float64.
TRAINING_DTYPE = np.float32
_HYPERPARAMETERS = (
    "time_freq",
    "context_length",
    "prediction_length",
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

OnEpoch = Callable[[int, float, float | None], None]


class DeepAREstimator(BaseEstimator):
    """Autoregressive LSTM forecaster with a likelihood head (SageMaker DeepAR's hyperparameters).

    The constructor only stores its arguments; :meth:`train` validates them, trains the network and
    returns a :class:`~.predictor.DeepARPredictor`.

    Parameters
    ----------
    time_freq : str, default "10min"
        Step of the series: an optional positive integer and ``min``, ``H``, ``D``, ``W`` or ``M``.
    context_length, prediction_length : int or None, default None
        Steps the network is run over before forecasting, and steps forecast. None: one season of
        ``time_freq`` (a day for sub-daily data: 144 at 10 minutes, 24 hourly; a week for daily data).
    epochs : int, default 60
        Maximum passes over the training windows.
    num_cells, num_layers : int, default 40, 2
        LSTM cells per layer and layers.
    likelihood : {"student-T", "gaussian", "negative-binomial"}, default "student-T"
        SageMaker's ``beta`` and ``deterministic-L1`` are accepted by the table and refused by
        :meth:`train` (not implemented here).
    dropout_rate : float in [0, 1), default 0.1
        Zoneout rate in training.
    learning_rate : float in (0, 1], default 1e-3
        Adam's step size.
    mini_batch_size : int, default 128
        Training windows per gradient step.
    early_stopping_patience : int or None, default None
        With a value, the last ``prediction_length`` points of every series are held out, forecast after
        every epoch, and training stops after that many epochs without a lower held-out quantile loss.
    num_eval_samples : int, default 100
        Sample paths for the held-out forecasts and the predictor's default.
    random_state : int, numpy Generator, SeedSequence or None, default None
        Seeds initialisation, training and the predictor's forecasts (the same seed, the same samples).
    calibration_level : float in (0, 1) or None, default 0.98
        Not a SageMaker hyperparameter: the central level of the band whose coverage is calibrated on
        the held-out tail (0.98: the [0.01, 0.99] band; :mod:`.calibration`). None, or no held-out tail,
        leaves the raw forecast.

    See Also
    --------
    DeepARPredictor : what :meth:`train` returns.
    clickstream_anomaly.deepar.DeepAR : the same model with ``fit(series)`` / ``predict(request)``.

    Notes
    -----
    Lags are chosen by frequency (:func:`~.timefeatures.lags_for`), time features by frequency and by
    the training span (:func:`~.timefeatures.features_for_span`), and both are recorded in the
    predictor. The scale of a window is the mean absolute observed value of its context.

    Examples
    --------
    >>> import numpy as np
    >>> from clickstream_anomaly.deepar import DeepAREstimator
    >>> hours = np.arange(24 * 16)
    >>> counts = np.random.default_rng(0).poisson(20 + 10 * np.sin(2 * np.pi * hours / 24))
    >>> estimator = DeepAREstimator(
    ...     time_freq="H", epochs=1, num_cells=8, num_layers=1, likelihood="negative-binomial", random_state=0
    ... )
    >>> predictor = estimator.train([{"start": "2021-01-01 00:00:00", "target": counts.tolist()}])
    >>> predictor.prediction_length
    24
    >>> samples = predictor.forecast({"start": "2021-01-01 00:00:00", "target": counts.tolist()}, num_samples=50)
    >>> samples.shape
    (50, 24)
    >>> bool((samples >= 0).all())
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{k: SAGEMAKER_CONSTRAINTS[k] for k in _HYPERPARAMETERS},
        "context_length": [Interval(Integral, 1, None, closed="left"), None],
        "prediction_length": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "calibration_level": [Interval(Real, 0.0, 1.0, closed="neither"), None],
    }

    def __init__(  # noqa: PLR0913  (keyword-only hyperparameters, stored as given: scikit-learn's estimator contract)
        self,
        *,
        time_freq: str = DEFAULT_TIME_FREQ,
        context_length: int | None = None,
        prediction_length: int | None = None,
        epochs: int = 60,
        num_cells: int = 40,
        num_layers: int = 2,
        likelihood: str = "student-T",
        dropout_rate: float = 0.1,
        learning_rate: float = 1e-3,
        mini_batch_size: int = 128,
        early_stopping_patience: int | None = None,
        num_eval_samples: int = 100,
        random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
        calibration_level: float | None = 0.98,
    ) -> None:
        self.time_freq = time_freq
        self.context_length = context_length
        self.prediction_length = prediction_length
        self.epochs = epochs
        self.num_cells = num_cells
        self.num_layers = num_layers
        self.likelihood = likelihood
        self.dropout_rate = dropout_rate
        self.learning_rate = learning_rate
        self.mini_batch_size = mini_batch_size
        self.early_stopping_patience = early_stopping_patience
        self.num_eval_samples = num_eval_samples
        self.random_state = random_state
        self.calibration_level = calibration_level

    # ------------------------------------------------------------------ settings
    def _validate_params(self) -> None:
        get_likelihood(self.likelihood)  # names the likelihoods, and those the local twin lacks
        super()._validate_params()
        check_time_freq(self.time_freq)

    def resolved_lengths(self) -> tuple[int, int]:
        """``(context_length, prediction_length)``, a season of ``time_freq`` where None."""
        season = season_length(parse_freq(self.time_freq))
        context = season if self.context_length is None else int(self.context_length)
        prediction = season if self.prediction_length is None else int(self.prediction_length)
        return context, prediction

    def hyperparameters(self) -> dict[str, str]:
        """The settings as a SageMaker training job takes them (strings; lengths resolved; unset left out)."""
        params = {k: getattr(self, k) for k in _HYPERPARAMETERS}
        params["context_length"], params["prediction_length"] = self.resolved_lengths()
        return {k: str(v).strip() for k, v in params.items() if v is not None}

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any], **local: Any) -> DeepAREstimator:
        """Build from a SageMaker hyperparameter dict (string values allowed; SageMaker-only keys ignored);
        ``local`` holds the settings SageMaker lacks (``random_state``, ``calibration_level``)."""
        hp = validate_hyperparameters(hyperparameters)
        return cls(**{k: hp[k] for k in _HYPERPARAMETERS}, **local)

    # ------------------------------------------------------------------ training
    def train(self, training_data: Iterable[Mapping[str, Any]], *, on_epoch: OnEpoch | None = None) -> DeepARPredictor:
        """Train on SageMaker training records (``{"start", "target"}``, ``"NaN"``/null for missing).

        Training windows span ``context_length + prediction_length`` steps and start wherever every lag
        reads an observed position (after one season, see :mod:`.transform`); one epoch visits each
        window once, in shuffled batches of ``mini_batch_size``. The loss is the mean negative
        log-likelihood over the observed target values of both ranges, with teacher forcing. With
        ``early_stopping_patience`` the last ``prediction_length`` points of every series are held out
        and forecast after every epoch (``num_eval_samples`` paths, as SageMaker's test channel): the
        validation loss is their mean weighted quantile loss at 0.1..0.9 (SageMaker's
        ``test:mean_wQuantileLoss``), and the best epoch's weights are kept. Then, with
        ``calibration_level``, the held-out tails are forecast once more (``CALIBRATION_SAMPLES`` paths)
        and the spread factors are fitted on them (:mod:`.calibration`).

        Parameters
        ----------
        training_data : iterable of dict
            DeepAR series records; each needs ``context_length + prediction_length`` points (twice
            ``prediction_length`` more with early stopping), and together at least 300 observed values.
        on_epoch : callable, optional
            Called as ``on_epoch(epoch, train_loss, val_loss)`` after each epoch (1-based; ``val_loss``
            None without early stopping).

        Returns
        -------
        DeepARPredictor
        """
        self._validate_params()
        freq = parse_freq(self.time_freq)
        lk = get_likelihood(self.likelihood)
        context, prediction = self.resolved_lengths()
        data = check_series(training_data, context + prediction, lk)
        rng = check_random_state(self.random_state)
        forecast_seed = self.random_state if isinstance(self.random_state, Integral) else int(rng.integers(2**31))
        span_days = max(len(v) for _, v in data) / steps_per_day(freq)
        tr = Transform(
            freq, context, prediction, lags_for(freq), features_for_span(freq, span_days), season_length(freq)
        )
        hold = prediction if self.early_stopping_patience is not None else 0
        win = training_windows(data, tr, hold)
        params = network.init_params(tr.n_inputs, self.num_cells, self.num_layers, lk.n_params, rng)
        params = {k: v.astype(TRAINING_DTYPE) for k, v in params.items()}
        loss_fn = _loss_function(data, tr, lk, win, self.dropout_rate)
        val_fn = _validation_function(data, tr, lk, self.num_eval_samples, int(forecast_seed)) if hold else None
        with network.single_threaded_blas():
            result = train(
                params,
                loss_fn,
                len(win),
                epochs=int(self.epochs),
                batch_size=int(self.mini_batch_size),
                learning_rate=float(self.learning_rate),
                rng=rng,
                val_fn=val_fn,
                patience=self.early_stopping_patience,
                on_epoch=on_epoch,
            )
        calibration = BandCalibration(level=self.calibration_level)
        if hold and self.calibration_level is not None:
            calibration = _calibrate(params, data, tr, lk, float(self.calibration_level), int(forecast_seed))
        keep = tr.max_lag + context + prediction  # a block may start up to prediction - 1 steps before the end
        return DeepARPredictor(
            transform=tr,
            likelihood=lk.name,
            weights=params,
            calibration=calibration,
            series=[{"start": start.strftime("%Y-%m-%d %H:%M:%S"), "length": len(v)} for start, v in data],
            history=[v[-keep:].copy() for _, v in data],
            random_state=int(forecast_seed) if self.random_state is not None else None,
            num_samples=int(self.num_eval_samples),
            hyperparameters=self.hyperparameters(),
            training=result,
        )


def check_series(
    records: Iterable[Mapping[str, Any]], need: int, likelihood: Likelihood
) -> list[tuple[pd.Timestamp, np.ndarray]]:
    """Training records -> ``[(start, values)]``; ``ValueError`` naming the series for anything SageMaker
    refuses (or the local twin cannot do): no records, no start/target, ``cat``/``dynamic_feat``, bad
    values, fewer than ``need`` points, values outside the likelihood's support, < 300 observed."""
    records = list(records)
    if not records:
        raise ValueError("no training series")
    out = []
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or "start" not in rec or "target" not in rec:
            raise ValueError(f"series {i}: a DeepAR record needs 'start' and 'target'")
        for key in ("cat", "dynamic_feat"):
            if rec.get(key) not in (None, [], ""):
                raise ValueError(f"series {i}: '{key}' is not supported by the local DeepAR twin")
        start = parse_start(rec["start"], i)
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
            likelihood.check_targets(values)
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


def training_windows(data: list[tuple[pd.Timestamp, np.ndarray]], transform: Transform, hold: int) -> np.ndarray:
    """``(series, t0)`` of every training window, int64 ndarray of shape (n_windows, 2).

    A window covers ``context_length + prediction_length`` steps from ``t0``, ends before the ``hold``
    held-out points, and starts where every lag is observed (or at 0 when the series is shorter).
    """
    T = transform.context_length + transform.prediction_length
    first = transform.first_complete()
    ids: list[tuple[int, int]] = []
    for s, (_, values) in enumerate(data):
        hi = len(values) - hold - T
        if hi >= 0:
            ids.extend((s, t0) for t0 in range(min(first, hi), hi + 1))
    if not ids:
        raise ValueError(
            "series are too short to hold out prediction_length points for early stopping: "
            f"need context_length + 2 * prediction_length = {T + hold} points"
        )
    return np.asarray(ids, dtype="int64")


def _loss_function(
    data: list[tuple[pd.Timestamp, np.ndarray]], tr: Transform, lk: Likelihood, win: np.ndarray, dropout_rate: float
) -> Callable[[network.Params, np.ndarray, np.random.Generator], tuple[float, network.Params]]:
    """``loss_fn(params, window_ids, rng) -> (mean NLL, gradients)`` of a batch (teacher forcing, zoneout)."""
    T = tr.context_length + tr.prediction_length
    prepared = [tr.prepare(start, values) for start, values in data]

    def arrays(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = np.empty((T, len(rows), tr.n_inputs), TRAINING_DTYPE)
        Z = np.empty((T, len(rows)))
        scale = np.empty(len(rows))
        for j, (s, t0) in enumerate(rows):
            X[:, j], scale[j] = tr.window(prepared[s], int(t0), T)
            Z[:, j] = prepared[s].values[t0 : t0 + T]
        return X, Z, scale

    cache = arrays(win) if len(win) * T * tr.n_inputs <= _MAX_PRECOMPUTED else None

    def loss_fn(p: network.Params, idx: np.ndarray, rng: np.random.Generator) -> tuple[float, network.Params]:
        X, Z, scale = (cache[0][:, idx], cache[1][:, idx], cache[2][idx]) if cache is not None else arrays(win[idx])
        zoneout = network.zoneout_masks(p, T, len(idx), dropout_rate, rng)
        raw, fwd = network.forward(p, X, zoneout)
        mask = ~np.isnan(Z)
        count = max(int(mask.sum()), 1)
        nll, d_raw = lk.nll(raw, np.where(mask, Z, 0.0), scale[None, :])
        loss = float((nll * mask).sum() / count)
        d_raw = (d_raw * (mask / count)[..., None]).astype(TRAINING_DTYPE)
        return loss, network.backward(p, fwd, d_raw)

    return loss_fn


def _validation_function(
    data: list[tuple[pd.Timestamp, np.ndarray]], tr: Transform, lk: Likelihood, n_samples: int, seed: int
) -> Callable[[network.Params], float]:
    """``val_fn(params)``: mean weighted quantile loss of the held-out tails' forecasts (inf if none)."""
    P = tr.prediction_length

    def val_fn(p: network.Params) -> float:
        losses = [
            mean_weighted_quantile_loss(
                sample_paths(p, tr, lk, start, values[:-P], n_samples, np.random.default_rng(seed)), values[-P:]
            )
            for start, values in data
        ]
        return float(np.nanmean(losses)) if not np.isnan(losses).all() else np.inf

    return val_fn


def _calibrate(
    params: network.Params,
    data: list[tuple[pd.Timestamp, np.ndarray]],
    tr: Transform,
    lk: Likelihood,
    level: float,
    seed: int,
) -> BandCalibration:
    """Spread factors fitted on the held-out tails' forecasts (``CALIBRATION_SAMPLES`` paths each)."""
    P = tr.prediction_length
    samples = [
        sample_paths(params, tr, lk, start, values[:-P], CALIBRATION_SAMPLES, np.random.default_rng(seed))
        for start, values in data
    ]
    truths = [values[-P:] for _, values in data]
    return fit_calibration(samples, truths, level, fit_level=min(FIT_LEVEL, level))


__all__ = ["DEFAULT_TIME_FREQ", "MIN_OBSERVATIONS", "DeepAREstimator", "TrainResult", "check_series"]
