"""The SageMaker wire formats, each produced and parsed here and nowhere else.

* RCF training CSV: no header, feature columns only (content type ``text/csv;label_size=0``).
* RCF labelled test CSV: no header, label first then features (``text/csv;label_size=1``).
* RCF inference: request ``text/csv`` rows of features; response ``{"scores": [{"score": s}, ...]}``.
* DeepAR JSON Lines: one ``{"start": "YYYY-MM-DD HH:MM:SS", "target": [...]}`` per line, missing values
  as ``"NaN"``; train = series minus the last ``prediction_length`` points, test = full series.
* DeepAR inference: request ``{"instances": [...], "configuration": {...}}``; response
  ``{"predictions": [{"mean": [...], "quantiles": {"0.01": [...]}, "samples": [[...]]}]}``.

No AWS library is imported: these are plain strings and dicts.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

RCF_TRAIN_CONTENT_TYPE = "text/csv;label_size=0"
RCF_TEST_CONTENT_TYPE = "text/csv;label_size=1"
RCF_INFERENCE_CONTENT_TYPE = "text/csv"
DEEPAR_CONTENT_TYPE = "application/json"
DEEPAR_JSONLINES_CONTENT_TYPE = "application/jsonlines"
DEEPAR_START_FORMAT = "%Y-%m-%d %H:%M:%S"
DEEPAR_OUTPUT_TYPES = ("mean", "quantiles", "samples")


# --------------------------------------------------------------------------- RCF
def _csv_rows(matrix: np.ndarray) -> str:
    """Rows of ``%.17g`` numbers: lossless for float64, so an endpoint scores exactly the local values."""
    buf = io.StringIO()
    np.savetxt(buf, matrix, delimiter=",", fmt="%.17g")
    return buf.getvalue()


def rcf_training_csv(features: np.ndarray) -> str:
    """``(n, d)`` features -> the RCF ``train`` channel CSV (no header, no label)."""
    matrix = _as_matrix(features)
    return _csv_rows(matrix)


def rcf_test_csv(features: np.ndarray, labels: Sequence[int] | np.ndarray) -> str:
    """``(n, d)`` features and ``(n,)`` 0/1 labels -> the RCF ``test`` channel CSV (label first)."""
    matrix = _as_matrix(features)
    labels = np.asarray(labels, dtype="float64").reshape(-1, 1)
    if len(labels) != len(matrix):
        raise ValueError(f"{len(labels)} labels for {len(matrix)} rows")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("RCF test labels must be 0 or 1")
    return _csv_rows(np.hstack([labels, matrix]))


def rcf_request_body(features: np.ndarray) -> str:
    """Body of an RCF endpoint ``InvokeEndpoint`` call (``text/csv``)."""
    return _csv_rows(_as_matrix(features))


def parse_rcf_request(body: str | bytes) -> np.ndarray:
    """Inverse of :func:`rcf_request_body`: ``text/csv`` rows -> ``(n, d)`` float64 (what the endpoint sees)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    rows = [line for line in text.splitlines() if line.strip()]
    if not rows:
        raise ValueError("empty RCF request body")
    try:
        matrix = np.asarray([[float(v) for v in line.split(",")] for line in rows], dtype="float64")
    except ValueError as exc:
        raise ValueError(f"not an RCF CSV request body: {exc}") from exc
    return matrix


def parse_rcf_response(body: str | bytes, expected: int | None = None) -> np.ndarray:
    """``{"scores": [{"score": s}, ...]}`` -> ``(n,)`` float64 scores (checks the count when given)."""
    try:
        data = json.loads(body)
        scores = np.asarray([float(item["score"]) for item in data["scores"]], dtype="float64")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an RCF response body: {exc}") from exc
    if expected is not None and len(scores) != expected:
        raise ValueError(f"RCF endpoint returned {len(scores)} scores for {expected} rows")
    return scores


def rcf_response_body(scores: Iterable[float]) -> str:
    """The RCF endpoint's response body for ``scores`` (used by the local twin and by tests)."""
    return json.dumps({"scores": [{"score": float(s)} for s in scores]})


def _as_matrix(features: np.ndarray) -> np.ndarray:
    matrix = np.asarray(features, dtype="float64")
    if matrix.ndim == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, d) matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("features contain NaN or infinity")
    return matrix


# --------------------------------------------------------------------------- DeepAR
def format_start(ts: Any) -> str:
    """A timestamp -> DeepAR's ``start`` string (``YYYY-MM-DD HH:MM:SS``, UTC, no zone)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.strftime(DEEPAR_START_FORMAT)


def _target_list(values: Iterable[float | None]) -> list[float | str]:
    out: list[float | str] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append("NaN")
        else:
            f = float(v)
            out.append("NaN" if math.isnan(f) else f)
    return out


def deepar_record(start: Any, target: Iterable[float | None], **extra: Any) -> dict[str, Any]:
    """One DeepAR series record ``{"start", "target", ...}`` (missing values as ``"NaN"``)."""
    rec: dict[str, Any] = {"start": format_start(start), "target": _target_list(target)}
    rec.update(extra)
    return rec


def series_from_windows(windows: pd.DataFrame, column: str = "clicks") -> dict[str, Any]:
    """A windows frame -> one DeepAR record of ``column`` starting at the first window."""
    if windows.empty:
        raise ValueError("no windows to build a DeepAR series from")
    return deepar_record(windows["window_start"].iloc[0], windows[column].to_numpy(dtype="float64"))


def train_test_split(record: dict[str, Any], prediction_length: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """DeepAR convention: test = the full series, train = the series minus its last ``prediction_length``."""
    if prediction_length <= 0:
        raise ValueError("prediction_length must be positive")
    if len(record["target"]) <= prediction_length:
        raise ValueError(
            f"series of {len(record['target'])} points is too short to hold out prediction_length={prediction_length}"
        )
    train = dict(record)
    train["target"] = list(record["target"][:-prediction_length])
    return train, dict(record)


def to_jsonlines(records: Iterable[dict[str, Any]]) -> str:
    """Series records -> DeepAR JSON Lines text (one compact object per line)."""
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def from_jsonlines(text: str) -> list[dict[str, Any]]:
    """DeepAR JSON Lines -> records; errors name the line."""
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {i}: not JSON: {exc}") from exc
        if "start" not in rec or "target" not in rec:
            raise ValueError(f"line {i}: a DeepAR record needs 'start' and 'target'")
        out.append(rec)
    return out


def target_array(record: dict[str, Any]) -> np.ndarray:
    """A record's target as float64 with NaN for missing values (``"NaN"``, ``null``)."""
    return np.asarray([np.nan if (v is None or v == "NaN") else float(v) for v in record["target"]], dtype="float64")


def deepar_request(
    instances: Sequence[dict[str, Any]],
    *,
    num_samples: int = 100,
    output_types: Sequence[str] = ("mean", "quantiles"),
    quantiles: Sequence[float | str] = ("0.01", "0.5", "0.99"),
) -> dict[str, Any]:
    """The DeepAR endpoint request body. Quantiles are sent as strings, as SageMaker documents."""
    bad = [t for t in output_types if t not in DEEPAR_OUTPUT_TYPES]
    if bad:
        raise ValueError(f"unknown DeepAR output type(s) {bad}; use {list(DEEPAR_OUTPUT_TYPES)}")
    qs = [quantile_key(q) for q in quantiles]
    return {
        "instances": [dict(inst) for inst in instances],
        "configuration": {"num_samples": int(num_samples), "output_types": list(output_types), "quantiles": qs},
    }


def quantile_key(q: float | str) -> str:
    """A quantile as SageMaker keys it: ``0.5`` -> ``"0.5"``, ``0.01`` -> ``"0.01"``."""
    value = float(q)
    if not 0.0 < value < 1.0:
        raise ValueError(f"quantile {q!r} must be in (0, 1)")
    return f"{value:g}"


def parse_deepar_request(body: str | bytes | dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Request body -> ``(instances, configuration)`` with SageMaker's defaults filled in."""
    data = json.loads(body) if isinstance(body, str | bytes) else body
    if "instances" not in data:
        raise ValueError("DeepAR request needs 'instances'")
    conf = dict(data.get("configuration") or {})
    conf.setdefault("num_samples", 100)
    conf.setdefault("output_types", ["quantiles"])
    conf.setdefault("quantiles", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"])
    conf["quantiles"] = [quantile_key(q) for q in conf["quantiles"]]
    bad = [t for t in conf["output_types"] if t not in DEEPAR_OUTPUT_TYPES]
    if bad:
        raise ValueError(f"unknown DeepAR output type(s) {bad}; use {list(DEEPAR_OUTPUT_TYPES)}")
    return list(data["instances"]), conf


def deepar_prediction(samples: np.ndarray, configuration: dict[str, Any]) -> dict[str, Any]:
    """``(num_samples, prediction_length)`` sample paths -> one SageMaker ``predictions`` entry."""
    samples = np.asarray(samples, dtype="float64")
    out: dict[str, Any] = {}
    types = configuration.get("output_types", ["quantiles"])
    if "mean" in types:
        out["mean"] = samples.mean(axis=0).tolist()
    if "quantiles" in types:
        out["quantiles"] = {q: np.quantile(samples, float(q), axis=0).tolist() for q in configuration["quantiles"]}
    if "samples" in types:
        out["samples"] = samples.tolist()
    return out


def parse_deepar_response(body: str | bytes | dict[str, Any]) -> list[dict[str, Any]]:
    """Response body -> list of predictions, arrays as numpy, quantile keys as strings."""
    data = json.loads(body) if isinstance(body, str | bytes) else body
    try:
        preds = data["predictions"]
    except (KeyError, TypeError) as exc:
        raise ValueError("not a DeepAR response body: no 'predictions'") from exc
    out = []
    for p in preds:
        item: dict[str, Any] = {}
        if "mean" in p:
            item["mean"] = np.asarray(p["mean"], dtype="float64")
        if "quantiles" in p:
            item["quantiles"] = {str(k): np.asarray(v, dtype="float64") for k, v in p["quantiles"].items()}
        if "samples" in p:
            item["samples"] = np.asarray(p["samples"], dtype="float64")
        out.append(item)
    return out
