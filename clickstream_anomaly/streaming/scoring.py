"""The scorer's core: a window -> SageMaker RCF endpoint and/or DeepAR endpoint -> detections.

* RCF: the window's features as one ``text/csv`` row; the response ``{"scores": [{"score": s}]}`` gives
  the score (detector ``rcf-batch``, as the local twin; the alerter applies the threshold).
* DeepAR: rolling forecasts in blocks of ``prediction_length`` windows aligned to the epoch (UTC days
  for 10-minute windows and a one-day ``prediction_length``), exactly as the local detector
  (:mod:`clickstream_anomaly.deepar.band`): at the first window of a block the recent ``clicks``
  history (kept in S3, :class:`History`) before it is sent as one instance, on the window grid
  (missing windows ``"NaN"``), its last :attr:`DeepARScoring.history_windows` values; the forecast's
  quantiles ``low``/0.5/``high`` (0.01/0.5/0.99) are kept in the state and give the band of every
  window of the block (detector ``deepar``). ``score`` is the distance outside the band in band widths
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
import pandas as pd

from ..deepar.band import BAND_SAMPLES, DEFAULT_HIGH, DEFAULT_LOW, block_end, forecast_history
from ..deepar.timefeatures import parse_freq, season_length, time_freq_for
from ..records import DEEPAR, RCF_BATCH, Detection, Window, format_timestamp
from ..records import band_score as band_score  # the scorer's band rule, re-exported
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
from ..windowspec import DEFAULT_WINDOW, WindowSpec

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


@dataclass(frozen=True)
class DeepARScoring:
    """How the scorer asks the DeepAR endpoint: the window length and the model's lengths (None: a day of
    windows, the detector's defaults), the band's quantile levels and the sample paths per forecast."""

    window: WindowSpec = DEFAULT_WINDOW
    context_length: int | None = None
    prediction_length: int | None = None
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH
    num_samples: int = BAND_SAMPLES

    @property
    def time_freq(self) -> str:
        return time_freq_for(self.window)

    @property
    def horizon(self) -> int:
        """``prediction_length`` resolved (windows per block)."""
        if self.prediction_length is not None:
            return int(self.prediction_length)
        return season_length(parse_freq(self.time_freq))

    @property
    def history_windows(self) -> int:
        """Windows sent per request: all a forecast depends on (largest lag + ``context_length``)."""
        return forecast_history(self.time_freq, self.context_length)

    @property
    def keep_windows(self) -> int:
        """Windows the state keeps: a block's forecast may start up to ``horizon - 1`` windows late."""
        return self.history_windows + self.horizon


@dataclass
class History:
    """Recent clicks per window for DeepAR's context: window start (ISO) -> clicks, bounded; and the band
    of the current block (``{"start": ISO, "low": [...], "mid": [...], "high": [...]}``, or None)."""

    clicks: dict[str, float] = field(default_factory=dict)
    context_windows: int = DeepARScoring().keep_windows
    band: dict[str, Any] | None = None

    def add(self, window: Window) -> None:
        self.clicks[format_timestamp(window.window_start)] = float(window.clicks)
        for key in sorted(self.clicks)[: max(0, len(self.clicks) - self.context_windows)]:
            del self.clicks[key]

    def grid_before(self, window: Window, step: pd.Timedelta, n: int) -> tuple[pd.Timestamp | None, list[float]]:
        """(start, values): the last ``n`` grid windows before ``window`` (NaN where none was seen),
        from the earliest stored one at most; (None, []) when none is stored."""
        stamp = pd.Timestamp(window.window_start)
        seen = [pd.Timestamp(k) for k in self.clicks if pd.Timestamp(k) < stamp]
        if not seen:
            return None, []
        count = min(n, int((stamp - min(seen)) // step))
        grid = [stamp - step * (count - i) for i in range(count)]
        values = [self.clicks.get(format_timestamp(ts), float("nan")) for ts in grid]
        return grid[0], values

    def to_bytes(self) -> bytes:
        return json.dumps({"clicks": self.clicks, "context_windows": self.context_windows, "band": self.band}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None, context_windows: int = DeepARScoring().keep_windows) -> History:
        if raw is None:
            return cls(context_windows=context_windows)
        data = json.loads(raw)
        return cls({k: float(v) for k, v in data["clicks"].items()}, context_windows, data.get("band"))


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
    window: Window,
    history: History,
    endpoint: str,
    invoke: Invoke,
    min_context: int = 12,
    scoring: DeepARScoring | None = None,
) -> Detection | None:
    """The forecast band for ``window`` (its block's forecast, requested at the block's first window);
    ``None`` while the history is shorter than ``min_context`` windows."""
    cfg = scoring or DeepARScoring()
    step = cfg.window.length
    stamp = pd.Timestamp(window.window_start)
    band = history.band
    k = -1
    if band is not None:
        start = pd.Timestamp(band["start"])
        k = int((stamp - start) // step) if stamp >= start else -1
        if k >= len(band["mid"]) or (stamp - start) % step != pd.Timedelta(0):
            k = -1
    if band is None or k < 0:  # (k < 0 whenever band is None)
        band = _block_band(window, history, endpoint, invoke, min_context, cfg)
        if band is None:
            return None
        history.band, k = band, 0
    lo, mid, hi = (float(band[key][k]) for key in ("low", "mid", "high"))
    return Detection.from_band(window, float(window.clicks), lo, mid, hi, DEEPAR_DETECTOR, low=cfg.low, high=cfg.high)


def _block_band(
    window: Window, history: History, endpoint: str, invoke: Invoke, min_context: int, cfg: DeepARScoring
) -> dict[str, Any] | None:
    """Request the forecast made at ``window`` and keep its steps up to the end of ``window``'s block."""
    step = cfg.window.length
    start, target = history.grid_before(window, step, cfg.history_windows)
    if start is None or int(np.isfinite(target).sum()) < min_context:
        return None
    levels = (cfg.low, 0.5, cfg.high)
    request = deepar_request(
        [deepar_record(start, target)], num_samples=cfg.num_samples, output_types=("quantiles",), quantiles=levels
    )
    raw = with_retries(lambda: invoke(endpoint, json.dumps(request), "application/json"))
    (pred,) = parse_deepar_response(raw)
    steps = block_end(0, pd.Timestamp(window.window_start), step, cfg.horizon)
    q = pred["quantiles"]
    names = ("low", "mid", "high")
    cut = {name: [float(v) for v in q[quantile_key(lv)][:steps]] for name, lv in zip(names, levels, strict=True)}
    return {"start": format_timestamp(window.window_start), **cut}


def score_window(
    window: Window,
    *,
    invoke: Invoke,
    rcf_endpoint: str = "",
    deepar_endpoint: str = "",
    history: History | None = None,
    rcf_scaling: Scaling | None = None,
    deepar: DeepARScoring | None = None,
) -> list[Detection]:
    """Detections of the configured endpoints for one window (an empty endpoint name is disabled)."""
    out: list[Detection] = []
    if rcf_endpoint:
        out.append(rcf_detection(window, rcf_endpoint, invoke, rcf_scaling))
    if deepar_endpoint and history is not None:
        det = deepar_detection(window, history, deepar_endpoint, invoke, scoring=deepar)
        if det is not None:
            out.append(det)
    return out
