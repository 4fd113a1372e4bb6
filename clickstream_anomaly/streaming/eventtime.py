"""The one event-time policy of the stateful components (aggregator, detector, alerter).

Every stateful component keeps an *event clock*: the newest event time it accepted (the aggregator one
per shard; the detector its last window; the alerter its last window per detector), moved on by the
wall time elapsed since (an outage, a quiet night: real time passed). One mis-dated record must not move
that clock, because everything after it would then look late (windows closed, windows skipped,
detections skipped). So an event time is **rejected** when it is

* before :attr:`EventTimePolicy.earliest` (default 2000-01-01T00:00Z: an epoch-zero or year-1900 clock),
* more than :attr:`EventTimePolicy.max_future` ahead of the wall clock (default 15 minutes in the
  Lambdas; off in the core unless given, so that tests and replays may bring their own clock), or
* more than :attr:`EventTimePolicy.max_ahead` ahead of the component's event clock (default 6 hours:
  a record dated a day ahead, or in 2100).

A rejected record is **counted, logged with its reason, and sent to the component's failure
destination** (its SQS failure queue, whose alarm fires), never silently dropped and never applied: the
clock does not move. Rejections go through the component's state like its other results (saved, sent,
then cleared), so a crash never loses one. Late records (behind the watermark by more than the allowed
lateness) are not rejections: the aggregator counts them (``LateClicksDropped``) as before.

What the policy cannot tell: a first record ever (no clock yet) that is within the bounds but wrong, and a
legitimate jump of more than ``max_ahead`` in replayed data (a day missing from a replay). The second is
rejected loudly; ``clickstream-anomaly state reset`` starts the component's clock again
(docs/reliability.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_MAX_AHEAD_SECONDS = 6 * 3600.0
#: The Lambdas' bound ahead of the wall clock (``EVENT_TIME_MAX_FUTURE``); the core leaves it off by default.
LAMBDA_MAX_FUTURE_SECONDS = 15 * 60.0


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds:.0f} s since the epoch"


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min"


@dataclass(frozen=True)
class EventTimePolicy:
    """The bounds of an accepted event time (see the module docstring); times are seconds since the epoch."""

    max_ahead: float = DEFAULT_MAX_AHEAD_SECONDS
    max_future: float | None = None
    earliest: float = EARLIEST_EVENT_TIME.timestamp()

    def __post_init__(self) -> None:
        if not self.max_ahead > 0 or (self.max_future is not None and not self.max_future >= 0):
            raise ValueError("the event-time bounds must be positive")

    def reason(self, event: float, *, clock: float | None = None, now: float | None = None) -> str | None:
        """Why ``event`` is rejected, or ``None`` when it is accepted.

        ``clock`` is the component's event clock (``None`` before its first event), ``now`` the wall clock.
        """
        if event < self.earliest:
            return f"event time {_iso(event)} is before {_iso(self.earliest)}, the earliest accepted"
        if self.max_future is not None and now is not None and event > now + self.max_future:
            return (
                f"event time {_iso(event)} is {_span(event - now)} ahead of the wall clock {_iso(now)} "
                f"(at most {_span(self.max_future)})"
            )
        if clock is not None and event > clock + self.max_ahead:
            return (
                f"event time {_iso(event)} is {_span(event - clock)} ahead of the event clock {_iso(clock)} "
                f"(at most {_span(self.max_ahead)})"
            )
        return None


#: The core's default: the event-clock and earliest bounds (the wall-clock bound needs a real clock).
DEFAULT_POLICY = EventTimePolicy()


def advanced_clock(event: float | None, wall: float | None, now: float | None) -> float | None:
    """An event clock moved on by the wall time elapsed since it was set (``None`` when never set)."""
    if event is None:
        return None
    if wall is None or now is None:
        return event
    return event + max(0.0, now - wall)


def json_safe(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by its text (``"inf"``, ``"nan"``), so that
    it can be saved (:mod:`clickstream_anomaly.persist` refuses them) and sent as strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@dataclass
class Rejection:
    """A record a component did not apply: ``component``, the ``reason``, the ``record`` itself (its JSON
    object, :func:`json_safe`) and its ``source`` (shard and sequence number, when known)."""

    component: str
    reason: str
    record: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.record = json_safe(self.record)

    @property
    def key(self) -> str:
        """Identifies the rejection (a re-delivered record gives the same key)."""
        return json.dumps([self.component, self.record, self.source], sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "reason": self.reason, "record": self.record, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rejection:
        return cls(str(data["component"]), str(data["reason"]), dict(data["record"]), dict(data.get("source") or {}))


#: Rejections a state keeps while they cannot be sent; beyond it the oldest are counted as overflow.
MAX_PENDING_REJECTIONS = 1_000


def queue_rejections(outbox: list[dict[str, Any]], new: list[Rejection]) -> int:
    """Append ``new`` to a state's outbox of rejections (once per key); returns how many did not fit
    (:data:`MAX_PENDING_REJECTIONS`), which the caller counts."""
    known = {Rejection.from_dict(d).key for d in outbox}
    for r in new:
        if r.key not in known:
            outbox.append(r.to_dict())
            known.add(r.key)
    overflow = max(0, len(outbox) - MAX_PENDING_REJECTIONS)
    del outbox[:overflow]
    return overflow


def acknowledge_rejections(outbox: list[dict[str, Any]], sent: list[Rejection]) -> None:
    """Remove sent rejections from a state's outbox (in place)."""
    done = {r.key for r in sent}
    outbox[:] = [d for d in outbox if Rejection.from_dict(d).key not in done]


@dataclass
class EventClock:
    """One stream's event clock with :class:`EventTimePolicy` (the Lambdas' wall-clock bound by default): the
    newest accepted event, moved on by the wall time since; an event the policy rejects does not move it
    (the Flink job's decode step keeps one per subtask, before the watermark). Times in seconds."""

    policy: EventTimePolicy = field(default_factory=lambda: EventTimePolicy(max_future=LAMBDA_MAX_FUTURE_SECONDS))
    clock: float | None = None
    wall: float | None = None

    def reason(self, event: float, now: float | None) -> str | None:
        """Why ``event`` is rejected (``None``: accepted, and the clock moves to it when it is newer)."""
        why = self.policy.reason(event, clock=advanced_clock(self.clock, self.wall, now), now=now)
        if why is None and (self.clock is None or event > self.clock):
            self.clock, self.wall = event, now
        return why
