"""``DeepARPredictor``: a trained DeepAR (transformation, weights, calibration) that forecasts and saves.

:meth:`DeepARPredictor.predict` answers SageMaker DeepAR inference bodies exactly as an endpoint would
(``{"instances": [...], "configuration": {...}}`` -> ``{"predictions": [...]}``), with the band
calibration of :mod:`.calibration` applied (the one addition SageMaker does not have).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..params import as_int
from ..sagemaker_formats import DEEPAR_OUTPUT_TYPES, deepar_prediction, parse_deepar_request, target_array
from . import network
from .calibration import BandCalibration
from .likelihoods import get_likelihood
from .sampling import sample_paths
from .timefeatures import Freq, time_index
from .training import TrainResult
from .transform import Transform


class DeepARPredictor:
    """A trained DeepAR: forecasts sample paths and quantiles, answers SageMaker request bodies.

    Built by :meth:`~.estimator.DeepAREstimator.train` or :meth:`load`; not meant to be built by hand.

    Parameters
    ----------
    transform : Transform
        The fitted transformation (frequency, lengths, lags, time features) shared with training.
    likelihood : str
        Name of the likelihood head.
    weights : dict of ndarray
        The network's parameters (:mod:`.network`).
    calibration : BandCalibration
        Spread factors below and above the median.
    series : list of dict
        ``{"start", "length"}`` of each training series.
    history : list of ndarray
        The last ``max lag + context_length`` training values of each series (the default history of
        the band detector).
    random_state : int or None
        Seed of every forecast (None: fresh randomness each call).
    num_samples : int
        Default number of sample paths (the estimator's ``num_eval_samples``).
    hyperparameters : dict of str
        The estimator's SageMaker hyperparameters, for the record.
    training : TrainResult, optional
        Losses per epoch, best epoch, epochs run.

    Examples
    --------
    >>> import numpy as np
    >>> from clickstream_anomaly.deepar import DeepAREstimator, DeepARPredictor
    >>> counts = np.random.default_rng(1).poisson(30, size=24 * 14).tolist()
    >>> record = {"start": "2021-03-01 00:00:00", "target": counts}
    >>> predictor = DeepAREstimator(
    ...     time_freq="H", epochs=1, num_cells=8, num_layers=1, likelihood="negative-binomial", random_state=0
    ... ).train([record])
    >>> body = {"instances": [record], "configuration": {"num_samples": 200, "quantiles": ["0.01", "0.99"]}}
    >>> response = predictor.predict(body)
    >>> sorted(response["predictions"][0]["quantiles"])
    ['0.01', '0.99']
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "deepar.bin"
    >>> predictor.save(path)
    >>> DeepARPredictor.load(path).predict(body) == response
    True
    """

    def __init__(  # noqa: PLR0913  (the parts of a fitted predictor, keyword-only; `load` and `train` build it)
        self,
        *,
        transform: Transform,
        likelihood: str,
        weights: network.Params,
        calibration: BandCalibration,
        series: list[dict[str, Any]],
        history: list[np.ndarray],
        random_state: int | None,
        num_samples: int,
        hyperparameters: Mapping[str, str],
        training: TrainResult | None = None,
    ) -> None:
        self.transform = transform
        self.likelihood = likelihood
        self.weights = weights
        self.calibration = calibration
        self.series = series
        self.history = history
        self.random_state = random_state
        self.num_samples = num_samples
        self.hyperparameters = dict(hyperparameters)
        self.training = training if training is not None else TrainResult(weights)
        self._likelihood = get_likelihood(likelihood)

    # ------------------------------------------------------------------ settings
    @property
    def freq(self) -> Freq:
        return self.transform.freq

    @property
    def time_freq(self) -> str:
        return self.transform.freq.text

    @property
    def context_length(self) -> int:
        return self.transform.context_length

    @property
    def prediction_length(self) -> int:
        return self.transform.prediction_length

    @property
    def history_length(self) -> int:
        """Points of history that determine a forecast (largest lag + ``context_length``)."""
        return self.transform.max_lag + self.transform.context_length

    def training_end(self, series: int = 0) -> pd.Timestamp:
        """The first timestamp after training series ``series`` (naive UTC)."""
        info = self.series[series]
        return time_index(info["start"], info["length"] + 1, self.freq)[-1]

    # ------------------------------------------------------------------ forecasting
    def forecast(
        self,
        instance: Mapping[str, Any],
        num_samples: int | None = None,
        random_state: int | None = None,
        *,
        calibrated: bool = True,
    ) -> np.ndarray:
        """Sample paths for the ``prediction_length`` steps after the instance's target.

        Parameters
        ----------
        instance : dict
            A DeepAR record (``start``, ``target``; ``"NaN"``/null for missing). The whole target is the
            history (see :func:`~.sampling.sample_paths`).
        num_samples : int, optional
            Paths to draw (default ``num_samples`` of the predictor).
        random_state : int, optional
            Seed (default the predictor's).
        calibrated : bool, default True
            Apply the band calibration (then rounded and clipped at 0 for ``negative-binomial``);
            False gives the raw paths.

        Returns
        -------
        ndarray of shape (num_samples, prediction_length)
            In the target's units.
        """
        start, values = _instance(instance)
        n = self.num_samples if num_samples is None else _as_count(num_samples)
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        samples = sample_paths(self.weights, self.transform, self._likelihood, start, values, int(n), rng)
        if not calibrated:
            return samples
        return self.calibration.apply(samples, counts=self._likelihood.counts)

    def quantiles(
        self, instance: Mapping[str, Any], levels: Sequence[float], num_samples: int | None = None
    ) -> np.ndarray:
        """Quantiles of the calibrated forecast, ndarray of shape (len(levels), prediction_length)."""
        return np.quantile(self.forecast(instance, num_samples), list(levels), axis=0)

    def predict(self, request: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
        """A SageMaker DeepAR inference request body -> the response body (one prediction per instance)."""
        instances, conf = parse_deepar_request(request if isinstance(request, str | bytes) else dict(request))
        bad = [t for t in conf["output_types"] if t not in DEEPAR_OUTPUT_TYPES]
        if bad:
            raise ValueError(f"unknown DeepAR output type(s) {bad}; use {list(DEEPAR_OUTPUT_TYPES)}")
        n = _as_count(conf["num_samples"])
        return {"predictions": [deepar_prediction(self.forecast(inst, n), conf) for inst in instances]}

    # ------------------------------------------------------------------ persistence
    def to_bytes(self) -> bytes:
        """The predictor as a versioned state (:mod:`clickstream_anomaly.persist`, see :mod:`.state`)."""
        from .state import predictor_to_bytes

        return predictor_to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> DeepARPredictor:
        """Read :meth:`to_bytes` output, or a ``.npz`` model of format version 1 or 2."""
        from .state import predictor_from_bytes

        return predictor_from_bytes(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_bytes` to ``path`` atomically."""
        from .. import persist

        persist.save(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DeepARPredictor:
        """Read a predictor saved by :meth:`save` (or an older ``.npz`` DeepAR model)."""
        from .. import persist

        return cls.from_bytes(persist.load(path))

    def __repr__(self) -> str:
        return (
            f"DeepARPredictor(time_freq={self.time_freq!r}, context_length={self.context_length}, "
            f"prediction_length={self.prediction_length}, likelihood={self.likelihood!r})"
        )


def _as_count(value: Any) -> int:
    return as_int("num_samples", value, minimum=1)


def _instance(instance: Mapping[str, Any]) -> tuple[pd.Timestamp, np.ndarray]:
    if not isinstance(instance, Mapping) or "start" not in instance or "target" not in instance:
        raise ValueError("a DeepAR instance needs 'start' and 'target'")
    for key in ("cat", "dynamic_feat"):
        if instance.get(key) not in (None, [], ""):
            raise ValueError(f"'{key}' is not supported by the local DeepAR twin")
    values = target_array(dict(instance))
    if np.isinf(values).any():
        raise ValueError("instance target contains infinity")
    return parse_start(instance["start"], 0), values


def parse_start(value: Any, index: int) -> pd.Timestamp:
    """A record's ``start`` as a naive UTC timestamp; ``ValueError`` naming series ``index``."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"series {index}: bad start {value!r}: {exc}") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"series {index}: bad start {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts
