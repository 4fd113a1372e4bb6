"""Inspect and reset the streaming Lambdas' state objects in S3 (``clickstream-anomaly state``).

A state object that cannot be read stops its Lambda on every call (``CorruptState`` metric and alarm;
:class:`clickstream_anomaly.streaming.state.CorruptState` names the object). Nothing resets it but a
person: :func:`check_state` says what is wrong, :func:`reset_state` copies the object to a backup key
next to it and deletes it, so the component starts again from an empty state on its next call, and
:func:`rebuild_detector_state` then learns the detector's models again from the data lake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..retry import error_code
from .runtime import AGGREGATOR_PREFIX, ALERTER_STATE_KEY, SCORER_STATE_KEY

DETECTOR_STATE_KEY = "detector/state.bin"  # the stack's STATE_KEY for the detector

#: component -> (default key, what a reset loses and how it comes back)
COMPONENTS: dict[str, tuple[str, str]] = {
    "aggregator": (
        AGGREGATOR_PREFIX,  # a prefix: merge.state, shards/<id>.state, summaries/<id>.json
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


def _aggregator_decoder(key: str) -> Callable[[bytes], Any]:
    """The decoder of one of the aggregator's objects, by its key."""
    from ..streaming.aggregation import AggregatorState
    from ..streaming.merge import MergeState
    from ..streaming.shard_state import ShardState, ShardSummary

    if key.endswith("merge.state"):
        return MergeState.from_bytes
    if "/shards/" in key:
        return ShardState.from_bytes
    if "/summaries/" in key:
        return ShardSummary.from_json
    return AggregatorState.from_bytes  # the single-object state of earlier versions


def _decoders() -> dict[str, Callable[[bytes], Any]]:
    from ..streaming.alerting import AlerterState
    from ..streaming.detection import DetectorState
    from ..streaming.scoring import History

    return {
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


def _objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The keys of a prefixed state's objects (backups of earlier resets left out)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if ".reset-" not in o["Key"]]
    return sorted(keys)


def check_state(s3: Any, bucket: str, component: str, key: str | None = None) -> StateCheck:
    """Read ``component``'s state object (the aggregator: each of its objects) and decode it as the
    Lambda would; the aggregator's result is its first corrupt object, else ok with the total size."""
    key = state_key(component, key)
    if key.endswith("/"):
        keys = _objects(s3, bucket, key)
        checks = [check_state(s3, bucket, component, k) for k in keys]
        bad = [c for c in checks if c.status == "corrupt"]
        if bad:
            return bad[0]
        if not checks:
            return StateCheck("missing", f"s3://{bucket}/{key}")
        return StateCheck("ok", f"s3://{bucket}/{key} ({len(checks)} objects)", sum(c.size for c in checks))
    loc = f"s3://{bucket}/{key}"
    try:
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return StateCheck("missing", loc)
        raise
    decode = _aggregator_decoder(key) if component == "aggregator" else _decoders()[component]
    try:
        decode(raw)
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
    """Copy ``component``'s state object to ``<key>.reset-<UTC time>`` and delete it; returns the backup key
    (the aggregator: every object under its prefix, to ``<prefix>.reset-<UTC time>/...``).

    The next invocation of the component finds no state and starts from an empty one."""
    key = state_key(component, key)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    if key.endswith("/"):
        backup = f"{key.rstrip('/')}.reset-{stamp}/"
        for k in _objects(s3, bucket, key):
            s3.copy_object(Bucket=bucket, Key=backup + k[len(key) :], CopySource={"Bucket": bucket, "Key": k})
            s3.delete_object(Bucket=bucket, Key=k)
        return backup
    backup = f"{key}.reset-{stamp}"
    s3.copy_object(Bucket=bucket, Key=backup, CopySource={"Bucket": bucket, "Key": key})
    s3.delete_object(Bucket=bucket, Key=key)
    return backup


@dataclass(frozen=True)
class Rebuilt:
    """What :func:`rebuild_detector_state` wrote: the ``location``, how many ``windows`` it learned, the
    ``first``/``last`` window starts (ISO text) and the state's ``size`` in bytes."""

    location: str
    windows: int
    first: str | None
    last: str | None
    size: int


def rebuild_detector_state(
    s3: Any,
    bucket: str,
    lake_bucket: str,
    *,
    days: int,
    environ: Mapping[str, str],
    key: str | None = None,
    now: datetime | None = None,
) -> Rebuilt:
    """A detector state learned from the last ``days`` of window features in the data lake, written only
    where no state object exists (reset it first), so the detector Lambda continues after the last lake
    window with its models warm instead of a day of warm-up.

    ``environ`` holds the detector Lambda's settings (``DETECTORS``, ``TIMEZONE``, ``WINDOW_FREQ``,
    ``RCF_*``; missing ones take their defaults). The detections of the history are not sent: the
    state's outbox is left empty. Raises :class:`~clickstream_anomaly.streaming.state.StateConflict` when
    a state object exists and ``ValueError`` when the lake holds no window in those days.
    """
    from ..streaming.detection import new_state
    from .config import baseline_from_env, pages_from_env, rcf_params_from_env, streaming_detectors_from_env
    from .s3_store import S3Store
    from .training.lake import lake_windows

    key = state_key("detector", key)
    names = streaming_detectors_from_env(environ)
    params = rcf_params_from_env(environ) if "rcf-streaming" in names else None
    state = new_state(params, baseline=baseline_from_env(environ), pages=pages_from_env(environ))
    records = lake_windows(s3, lake_bucket, days, now or datetime.now(UTC))
    latest = {w.window_start: w for w in records}  # a re-delivered window counts once
    if not latest:
        raise ValueError(f"no window features under s3://{lake_bucket}/features/ in the last {days} day(s)")
    state.step(latest.values())
    state.outbox.clear()
    data = state.to_bytes()
    S3Store(s3, bucket, key).save(data, None)  # If-None-Match: never over a state the Lambda is using
    starts = sorted(latest)
    return Rebuilt(f"s3://{bucket}/{key}", len(starts), starts[0].isoformat(), starts[-1].isoformat(), len(data))
