"""Inspect and reset the streaming Lambdas' state objects in S3 (``clickstream-anomaly state``).

A state object that cannot be read stops its Lambda on every call (``CorruptState`` metric and alarm;
:class:`clickstream_anomaly.streaming.state.CorruptState` names the object). Nothing resets it but a
person: :func:`check_state` says what is wrong, :func:`reset_state` copies the object to a backup key
next to it and deletes it, so the component starts again from an empty state on its next call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..retry import error_code
from .runtime import AGGREGATOR_STATE_KEY, ALERTER_STATE_KEY, SCORER_STATE_KEY

DETECTOR_STATE_KEY = "detector/state.bin"  # the stack's STATE_KEY for the detector

#: component -> (default key, what a reset loses and how it comes back)
COMPONENTS: dict[str, tuple[str, str]] = {
    "aggregator": (
        AGGREGATOR_STATE_KEY,
        "its open windows and unsent windows (at most the last ~20 minutes of clicks, still in the data lake); "
        "it starts again from the next clicks",
    ),
    "detector": (
        DETECTOR_STATE_KEY,
        "its models: the streaming RCF and the time-aware baseline learn again from the next windows (the "
        "baseline is in warm-up for a day)",
    ),
    "alerter": (
        ALERTER_STATE_KEY,
        "its score statistics and open incidents: an open incident is announced again as a new one",
    ),
    "scorer": (SCORER_STATE_KEY, "DeepAR's recent history: the forecasts have less context until it refills"),
}


def _decoders() -> dict[str, Callable[[bytes], Any]]:
    from ..streaming.aggregation import AggregatorState
    from ..streaming.alerting import AlerterState
    from ..streaming.detection import DetectorState
    from ..streaming.scoring import History

    return {
        "aggregator": AggregatorState.from_bytes,
        "detector": DetectorState.from_bytes,
        "alerter": AlerterState.from_bytes,
        "scorer": History.from_bytes,
    }


def state_key(component: str, key: str | None = None) -> str:
    """The object key of ``component``'s state (``key`` overrides it)."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENTS)}")
    return key or COMPONENTS[component][0]


@dataclass(frozen=True)
class StateCheck:
    """``status`` ok | missing | corrupt, the object's ``location`` and ``size``, ``reason`` when corrupt."""

    status: str
    location: str
    size: int = 0
    reason: str = ""


def check_state(s3: Any, bucket: str, component: str, key: str | None = None) -> StateCheck:
    """Read ``component``'s state object and decode it as the Lambda would."""
    key = state_key(component, key)
    loc = f"s3://{bucket}/{key}"
    try:
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return StateCheck("missing", loc)
        raise
    try:
        _decoders()[component](raw)
    except Exception as exc:  # what the Lambda would report as CorruptState
        return StateCheck("corrupt", loc, len(raw), f"{type(exc).__name__}: {exc}")
    return StateCheck("ok", loc, len(raw))


def reset_state(
    s3: Any,
    bucket: str,
    component: str,
    key: str | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """Copy ``component``'s state object to ``<key>.reset-<UTC time>`` and delete it; returns the backup key.

    The next invocation of the component finds no state and starts from an empty one."""
    key = state_key(component, key)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    backup = f"{key}.reset-{stamp}"
    s3.copy_object(Bucket=bucket, Key=backup, CopySource={"Bucket": bucket, "Key": key})
    s3.delete_object(Bucket=bucket, Key=key)
    return backup
