"""The scorer's core: a window -> SageMaker RCF endpoint and/or DeepAR endpoint -> detections.

* RCF: the window's features as one ``text/csv`` row; the response ``{"scores": [{"score": s}]}`` gives
  the score (detector ``rcf-batch``, as the local twin; the alerter applies the threshold).
* DeepAR: the recent ``clicks`` history (kept in S3, :class:`History`, at most ``context_windows``
  values) is sent as one instance; the first step of the forecast quantiles 0.01/0.5/0.99 is the band
  for this window (detector ``deepar``). ``score`` is the distance outside the band in band widths
  (0 inside) and ``is_anomaly`` is set when the window's clicks fall outside it.

Both bodies are built and parsed by :mod:`clickstream_anomaly.sagemaker_formats`. ``invoke(endpoint,
body, content_type) -> bytes`` is injected; :func:`with_retries` retries throttling and transient endpoint
errors, then raises so the record is reported failed (never swallowed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..records import DEEPAR, RCF_BATCH, Detection, Window, format_timestamp
from ..retry import call_with_retries
from ..sagemaker_formats import (
    deepar_record,
    deepar_request,
    parse_deepar_response,
    parse_rcf_response,
    quantile_key,
    rcf_request_body,
)
from ..scaling import Scaling

RCF_DETECTOR = RCF_BATCH
DEEPAR_DETECTOR = DEEPAR
RETRYABLE = (
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "ModelNotReadyException",
    "TooManyRequestsException",
    "InternalServerError",
    "ServiceUnavailableException",
)

Invoke = Callable[[str, str, str], bytes]


def with_retries(fn: Callable[[], Any], *, attempts: int = 4, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Call ``fn``, retrying the endpoint errors in :data:`RETRYABLE` (see :mod:`clickstream_anomaly.retry`)."""
    return call_with_retries(fn, retryable=RETRYABLE, attempts=attempts, sleep=sleep)


@dataclass
class History:
    """Recent clicks per window for DeepAR's context: window start (ISO) -> clicks, bounded."""

    clicks: dict[str, float] = field(default_factory=dict)
    context_windows: int = 288

    def add(self, window: Window) -> None:
        self.clicks[format_timestamp(window.window_start)] = float(window.clicks)
        for key in sorted(self.clicks)[: max(0, len(self.clicks) - self.context_windows)]:
            del self.clicks[key]

    def before(self, window: Window) -> tuple[str | None, list[float]]:
        """(first window start, clicks) of the history strictly before ``window``."""
        stamp = format_timestamp(window.window_start)
        keys = [k for k in sorted(self.clicks) if k < stamp]
        return (keys[0] if keys else None), [self.clicks[k] for k in keys]

    def to_bytes(self) -> bytes:
        return json.dumps({"clicks": self.clicks, "context_windows": self.context_windows}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None, context_windows: int = 288) -> History:
        if raw is None:
            return cls(context_windows=context_windows)
        data = json.loads(raw)
        return cls({k: float(v) for k, v in data["clicks"].items()}, context_windows)


def band_score(value: float, p01: float, p99: float) -> float:
    """Distance of ``value`` outside ``[p01, p99]`` in band widths (0 inside): :meth:`Detection.from_band`'s."""
    return Detection.from_band(None, value, p01, (p01 + p99) / 2, p99).score


def rcf_detection(window: Window, endpoint: str, invoke: Invoke, scaling: Scaling | None = None) -> Detection:
    """The endpoint's score for ``window``, its features scaled as the training data was (``scaling``)."""
    features = np.asarray([window.features], dtype="float64")
    if scaling is not None:
        features = scaling.transform(features)
    body = rcf_request_body(features)
    raw = with_retries(lambda: invoke(endpoint, body, "text/csv"))
    (score,) = parse_rcf_response(raw, expected=1)
    return Detection(window, RCF_DETECTOR, float(score), 0.0, False)


def deepar_detection(
    window: Window, history: History, endpoint: str, invoke: Invoke, min_context: int = 12
) -> Detection | None:
    """The forecast band for ``window`` from the history before it; ``None`` while the history is short."""
    start, target = history.before(window)
    if start is None or len(target) < min_context:
        return None
    request = deepar_request([deepar_record(start, target)], output_types=("quantiles",))
    raw = with_retries(lambda: invoke(endpoint, json.dumps(request), "application/json"))
    (pred,) = parse_deepar_response(raw)
    q = pred["quantiles"]
    p01, p50, p99 = (float(q[quantile_key(k)][0]) for k in (0.01, 0.5, 0.99))
    return Detection.from_band(window, float(window.clicks), p01, p50, p99, DEEPAR_DETECTOR)


def score_window(
    window: Window,
    *,
    invoke: Invoke,
    rcf_endpoint: str = "",
    deepar_endpoint: str = "",
    history: History | None = None,
    rcf_scaling: Scaling | None = None,
) -> list[Detection]:
    """Detections of the configured endpoints for one window (an empty endpoint name is disabled)."""
    out: list[Detection] = []
    if rcf_endpoint:
        out.append(rcf_detection(window, rcf_endpoint, invoke, rcf_scaling))
    if deepar_endpoint and history is not None:
        det = deepar_detection(window, history, deepar_endpoint, invoke)
        if det is not None:
            out.append(det)
    return out
