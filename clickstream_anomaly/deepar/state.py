"""A :class:`~.predictor.DeepARPredictor` to and from bytes: the project's versioned state container.

Kind ``deepar.DeepARPredictor``, version 3 (:mod:`clickstream_anomaly.persist`): ``meta`` holds the
transformation (``time_freq``, lengths, lags, time features, season), the likelihood, the calibration
factors, the training series, the seed, the default sample count, the hyperparameters and the losses;
the arrays are the weights (``param_<name>``) and the training tails (``history_<i>``).

Versions 1 and 2 were ``.npz`` files (weights plus a JSON ``header``; version 2 added one symmetric
``calibration_factor``). They load with what they were trained with: every SageMaker time feature of
the frequency, lags before the series start read as 0, and the one factor on both sides.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from .. import persist
from .calibration import BandCalibration
from .predictor import DeepARPredictor
from .timefeatures import lags_for, parse_freq
from .training import TrainResult
from .transform import Transform

KIND = "deepar.DeepARPredictor"
VERSION = 3
LEGACY_FORMAT = "clickstream-anomaly-deepar"
LEGACY_VERSIONS = (1, 2)


def predictor_to_bytes(predictor: DeepARPredictor) -> bytes:
    """Serialise ``predictor`` (deterministic bytes: the same predictor gives the same bytes)."""
    tr = predictor.transform
    res = predictor.training
    meta = {
        "transform": {
            "time_freq": tr.freq.text,
            "context_length": tr.context_length,
            "prediction_length": tr.prediction_length,
            "lags": list(tr.lags),
            "features": list(tr.feature_names),
            "season": tr.season,
        },
        "likelihood": predictor.likelihood,
        "calibration": predictor.calibration.to_dict(),
        "series": predictor.series,
        "random_state": predictor.random_state,
        "num_samples": predictor.num_samples,
        "hyperparameters": predictor.hyperparameters,
        "training": {
            "train_loss": list(res.train_loss),
            "val_loss": list(res.val_loss),
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
        },
    }
    arrays = {f"param_{k}": v for k, v in predictor.weights.items()}
    arrays.update({f"history_{i}": h for i, h in enumerate(predictor.history)})
    return persist.dumps(KIND, VERSION, meta, arrays)


def predictor_from_bytes(data: bytes) -> DeepARPredictor:
    """Read :func:`predictor_to_bytes` output or a version 1/2 ``.npz`` file.

    Raises
    ------
    persist.StateFormatError
        Neither a DeepAR state nor an older DeepAR model, or a newer version than this code reads.
    """
    if bytes(data[:4]) == b"PK\x03\x04":
        return _from_npz(bytes(data))
    st = persist.loads(data, KIND, versions={VERSION})
    m = st.meta
    t = m["transform"]
    transform = Transform(
        parse_freq(t["time_freq"]),
        int(t["context_length"]),
        int(t["prediction_length"]),
        tuple(int(x) for x in t["lags"]),
        tuple(t["features"]),
        int(t["season"]),
    )
    weights = {k[len("param_") :]: v for k, v in st.arrays.items() if k.startswith("param_")}
    res = TrainResult(weights, **m["training"])
    return DeepARPredictor(
        transform=transform,
        likelihood=m["likelihood"],
        weights=weights,
        calibration=BandCalibration.from_dict(m["calibration"]),
        series=list(m["series"]),
        history=[st.arrays[f"history_{i}"] for i in range(len(m["series"]))],
        random_state=m["random_state"],
        num_samples=int(m["num_samples"]),
        hyperparameters=m["hyperparameters"],
        training=res,
    )


def _from_npz(data: bytes) -> DeepARPredictor:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        if "header" not in npz:
            raise persist.StateFormatError("not a saved DeepAR model (no header)")
        header: dict[str, Any] = json.loads(str(npz["header"]))
        if header.get("format") != LEGACY_FORMAT:
            raise persist.StateFormatError(f"not a saved DeepAR model (format {header.get('format')!r})")
        version = int(header.get("version", 0))
        if version not in LEGACY_VERSIONS:
            raise persist.StateFormatError(f"DeepAR .npz model version {version} is not readable here")
        weights = {k[len("param_") :]: npz[k] for k in npz.files if k.startswith("param_")}
        history = [npz[f"history_{i}"] for i in range(len(header["series"]))]
    p = header["params"]
    freq = parse_freq(p["time_freq"])
    lags = tuple(int(x) for x in header["lags"])
    if lags != lags_for(freq):
        raise persist.StateFormatError(f"saved lags {list(lags)} differ from this code's {list(lags_for(freq))}")
    factor = float(header.get("calibration_factor", 1.0))
    hp = {k: str(v) for k, v in p.items() if v is not None and k not in ("random_state", "calibration_level")}
    return DeepARPredictor(
        transform=Transform(freq, int(p["context_length"]), int(p["prediction_length"]), lags),
        likelihood=p["likelihood"],
        weights=weights,
        calibration=BandCalibration(factor, factor, p.get("calibration_level")),
        series=list(header["series"]),
        history=history,
        random_state=p.get("random_state"),
        num_samples=int(p["num_eval_samples"]),
        hyperparameters=hp,
        training=TrainResult(weights, train_loss=list(header.get("train_loss", []))),
    )
