"""Endpoint-backed detectors with the local detectors' interface: ``detect(windows, labels=None) ->
list[Detection]``, bodies built and parsed by :mod:`clickstream_anomaly.sagemaker_formats`.

The transport is the only difference between cloud and local: :class:`EndpointTransport` calls
``sagemaker-runtime`` ``InvokeEndpoint``; :mod:`clickstream_anomaly.aws.training.local` answers the same
bodies with the numpy twins. Records match the local detectors': RCF as ``rcf-batch`` (threshold rule over
the scores, robust z-score explanation), DeepAR as ``deepar`` (forecast band, ``p01``/``p50``/``p99``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.detectors import BAND_SAMPLES, detections_from_scores, deviation_explanation
from clickstream_anomaly.features import windows_to_records
from clickstream_anomaly.records import DEEPAR, RCF_BATCH, Detection
from clickstream_anomaly.scaling import Scaling
from clickstream_anomaly.thresholds import DEFAULT_THRESHOLD, ThresholdRule, parse_threshold

from .errors import SageMakerError


class Transport(Protocol):
    def invoke(self, body: str, content_type: str, accept: str = "application/json") -> bytes:
        """Send one request body; return the response body."""
        ...


@dataclass
class EndpointTransport:
    """``InvokeEndpoint`` on a deployed SageMaker endpoint (``client``: a ``sagemaker-runtime`` client)."""

    client: Any
    endpoint_name: str
    calls: int = 0

    def invoke(self, body: str, content_type: str, accept: str = "application/json") -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        self.calls += 1
        try:
            resp = self.client.invoke_endpoint(
                EndpointName=self.endpoint_name, ContentType=content_type, Accept=accept, Body=body.encode("utf-8")
            )
        except (ClientError, BotoCoreError) as exc:
            raise SageMakerError(f"InvokeEndpoint {self.endpoint_name} failed: {exc}") from exc
        return resp["Body"].read()


@dataclass
class RCFEndpointDetector:
    """Scores windows with a Random Cut Forest behind ``transport``.

    Features are scaled with ``scaling`` (the one ``prepare`` fitted on the training windows and wrote to
    ``rcf/scaling.json``), sent in batches of ``batch_size`` rows as ``text/csv``; the threshold rule is
    applied to all scores, as the local ``rcf-batch`` detector does.
    """

    transport: Transport
    scaling: Scaling = field(default_factory=Scaling.identity)
    threshold: str | ThresholdRule = DEFAULT_THRESHOLD
    batch_size: int = 500
    name: str = RCF_BATCH

    def score(self, windows: pd.DataFrame) -> np.ndarray:
        """``(n,)`` endpoint scores of ``windows``."""
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        z = self.scaling.apply(windows)
        parts = []
        for lo in range(0, len(z), self.batch_size):
            batch = z[lo : lo + self.batch_size]
            body = self.transport.invoke(fmt.rcf_request_body(batch), fmt.RCF_INFERENCE_CONTENT_TYPE)
            parts.append(fmt.parse_rcf_response(body, expected=len(batch)))
        return np.concatenate(parts) if parts else np.empty(0)

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        if windows.empty:
            return []
        scores = self.score(windows)
        rule = self.threshold if isinstance(self.threshold, ThresholdRule) else parse_threshold(self.threshold)
        threshold = rule.compute(scores, labels)
        z = self.scaling.apply(windows)
        attribution = [deviation_explanation(z[i], self.scaling.columns) for i in range(len(z))]
        return detections_from_scores(windows, scores, self.name, threshold, attribution)


@dataclass
class DeepAREndpointDetector:
    """Forecast band with a DeepAR model behind ``transport``.

    ``windows`` holds the history and the windows to score. Scored: the windows from ``score_from``
    (default: the last ``prediction_length`` windows) on, in blocks of ``prediction_length``; each block
    is forecast from all earlier windows of ``windows`` (the whole history, as DeepAR advises). A window
    is anomalous when ``column`` is outside ``[q(low), q(high)]``; ``score`` is the distance outside the
    band over the band width, as in :func:`clickstream_anomaly.deepar.forecast_band_detections`.
    """

    transport: Transport
    prediction_length: int = 144
    score_from: str | pd.Timestamp | None = None
    low: float = 0.01
    high: float = 0.99
    column: str = "clicks"
    num_samples: int = BAND_SAMPLES
    name: str = DEEPAR

    def _first_scored(self, stamps: pd.Series) -> int:
        if self.score_from is None:
            return max(len(stamps) - self.prediction_length, 1)
        ts = pd.Timestamp(self.score_from)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        first = int((stamps < ts).sum())  # stamps are sorted
        if first == 0:
            raise ValueError("score_from leaves no history before the first scored window")
        return first

    def forecast(self, start: Any, history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(low, median, high)`` quantile paths, each ``(prediction_length,)``, after ``history``."""
        quantiles = (self.low, 0.5, self.high)
        request = fmt.deepar_request(
            [fmt.deepar_record(start, history)],
            num_samples=self.num_samples,
            output_types=("quantiles",),
            quantiles=quantiles,
        )
        body = self.transport.invoke(json.dumps(request), fmt.DEEPAR_CONTENT_TYPE)
        (pred,) = fmt.parse_deepar_response(body)
        try:
            return tuple(pred["quantiles"][fmt.quantile_key(q)] for q in quantiles)
        except KeyError as exc:
            raise SageMakerError(f"DeepAR response lacks quantile {exc}") from exc

    def detect(self, windows: pd.DataFrame, labels: np.ndarray | None = None) -> list[Detection]:
        if not 0.0 < self.low < 0.5 < self.high < 1.0:
            raise ValueError(f"need 0 < low < 0.5 < high < 1, got low={self.low}, high={self.high}")
        if windows.empty:
            return []
        frame = windows.sort_values("window_start", kind="stable").reset_index(drop=True)
        stamps = pd.to_datetime(frame["window_start"], utc=True)
        values = frame[self.column].to_numpy(dtype="float64")
        first = self._first_scored(stamps)
        records = windows_to_records(frame)
        out: list[Detection] = []
        for b in range(first, len(frame), self.prediction_length):
            lo, mid, hi = self.forecast(stamps.iloc[0], values[:b])
            for k in range(min(self.prediction_length, len(frame) - b)):
                out.append(
                    Detection.from_band(
                        records[b + k],
                        float(values[b + k]),
                        lo[k],
                        mid[k],
                        hi[k],
                        self.name,
                        low=self.low,
                        high=self.high,
                        column=self.column,
                    )
                )
        return out
