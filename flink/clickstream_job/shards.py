"""Event time per shard, in the job's one keyed operator: plain Python, no PyFlink import.

The job's windows operator (:class:`~.job.Clicks`) takes every record of its key, from every shard, so
it keeps what Flink would keep per source split: each shard's newest event time. A shard's watermark is
Flink's bounded out-of-orderness one over its own clicks (``newest - out_of_orderness - 1 ms``); the
key's watermark is the **minimum over the active shards**, and it never moves back. So a shard read
behind the others (a backlog, a slow subtask) holds the watermark where its own clicks are, and none of
its clicks is late because another shard is ahead.

* **Idle shards** (Flink's ``withIdleness``): a shard that sent nothing for ``idle_timeout`` seconds of
  wall time stops holding the watermark until it sends again; a shard that ended (closed by a reshard)
  goes idle that way, so it holds nothing for longer than that. The operator sets a processing-time timer
  for the moment that happens (:meth:`ShardClocks.next_change`), so the watermark moves then even if no
  record comes.
* **Shards not seen yet**: after the operator starts or restarts, the watermark stays where it is for
  ``idle_timeout``, as a source split that has sent nothing holds Flink's until it is idle. A file
  source's splits are known in advance, so there it moves as soon as each has sent a click; Kinesis
  shards are discovered, so there it waits the whole ``idle_timeout`` (a shard whose first records come
  later than that is idle by Flink's rule anyway).
* Each record arrives tagged with its shard (:func:`split_record`): by the Kinesis source's
  deserialization schema (``ShardTaggedSchema`` in flink/pom.xml's jar) or, for a file source, by the
  job (the file's name).

The newest event time per shard is checkpointed (in the operator's journal); the wall times are not: a
restart gives every known shard ``idle_timeout`` again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

NS_PER_MS = 1_000_000
WATERMARK_MIN = -(2**63)  # Flink's Long.MIN_VALUE (ms): no watermark yet
#: Between a record's shard id and its data (ASCII unit separator: never in a shard id or a file name we
#: give, so the first one ends the id whatever the data holds).
SHARD_SEPARATOR = "\x1f"


def split_record(value: str) -> tuple[str, str]:
    """``(shard id, record)`` of a tagged record; ``("", value)`` for a record without a tag."""
    shard, sep, record = value.partition(SHARD_SEPARATOR)
    return (shard, record) if sep else ("", value)


def tag_record(shard: str, record: str) -> str:
    """``record`` tagged with ``shard`` (what the Kinesis source's schema does in Java)."""
    return shard + SHARD_SEPARATOR + record


@dataclass
class ShardClocks:
    """One key's per-shard event clocks and the watermark they allow (times: event ns, wall seconds).

    Parameters
    ----------
    out_of_orderness_ms : int
        The bounded out-of-orderness (the producer's maximum skew), ms.
    idle_timeout : float
        Seconds of wall time without a record after which a shard stops holding the watermark.
    known : frozenset of str or None
        The shards that exist (a file source's splits), or ``None`` when they are discovered (Kinesis).
    now : float
        Wall time when the clocks start (the operator's first record, after a start or a restart).
    """

    out_of_orderness_ms: int
    idle_timeout: float
    known: frozenset[str] | None = None
    now: float = 0.0
    newest: dict[str, int] = field(default_factory=dict)  # shard -> newest event time (ns); checkpointed
    seen: dict[str, float] = field(default_factory=dict)  # shard -> wall time of its last record
    hold_until: float = field(init=False)  # unknown shards: the watermark stays until then (wall time)

    def __post_init__(self) -> None:
        self.restart(self.now)

    def restart(self, now: float) -> None:
        """After a (re)start at wall time ``now``: every known shard is active again, and unknown shards have
        ``idle_timeout`` to show up before the watermark moves (known ones: until each has sent a click)."""
        self.seen = dict.fromkeys(self.newest, now)
        self.hold_until = now + self.idle_timeout

    def restore(self, shards: Iterable[tuple[str, int]]) -> None:
        """Take in shards' newest event times (a journal entry's :meth:`items` or one record's)."""
        newest = self.newest
        for shard, ts in shards:
            if ts > newest.get(shard, WATERMARK_MIN):
                newest[shard] = ts

    def items(self) -> tuple[tuple[str, int], ...]:
        """Every shard's newest event time, for a journal snapshot."""
        return tuple(self.newest.items())

    def held(self, now: float) -> bool:
        """Whether the watermark must wait for shards not seen yet: for ``idle_timeout`` after the (re)start,
        unless every known shard has sent a click."""
        return now < self.hold_until and (self.known is None or not self.known <= self.newest.keys())

    def watermark(self, shard: str, newest_ns: int | None, now: float) -> int:
        """Record that ``shard`` sent a record at wall time ``now`` whose newest click is ``newest_ns`` (``None``:
        no click counted), and return the watermark the shards allow now: the minimum over the active shards'
        bounded out-of-orderness watermarks (:data:`WATERMARK_MIN` while held). The caller keeps the larger
        of it and its own watermark (a watermark never moves back)."""
        if newest_ns is not None and newest_ns > self.newest.get(shard, WATERMARK_MIN):
            self.newest[shard] = newest_ns
        self.seen[shard] = now
        return self.current(now)

    def _active(self, now: float) -> list[tuple[int, str]]:
        """``(newest event time, shard)`` of the shards not idle at wall time ``now``."""
        idle_before = now - self.idle_timeout
        seen = self.seen
        return [(ts, s) for s, ts in self.newest.items() if seen.get(s, now) >= idle_before]

    def current(self, now: float) -> int:
        """The watermark the shards allow at wall time ``now`` (:data:`WATERMARK_MIN` while held, or while no
        shard is active: every shard idle moves nothing)."""
        if self.held(now):
            return WATERMARK_MIN
        idle_before, seen, low = now - self.idle_timeout, self.seen, None
        for shard, ts in self.newest.items():  # min(self._active(now))[0], without the list (once a record)
            if seen.get(shard, now) >= idle_before and (low is None or ts < low):
                low = ts
        if low is None:
            return WATERMARK_MIN
        return (low // NS_PER_MS - self.out_of_orderness_ms - 1) * NS_PER_MS

    def next_change(self, now: float) -> float | None:
        """The wall time at which the watermark may move without a record (the hold ends, or the slowest shard
        goes idle while another is active), for a processing-time timer; ``None``: not before a record."""
        if self.held(now):
            return self.hold_until
        if len(self.newest) < 2:  # one shard or none: nothing to go idle behind another
            return None
        active = self._active(now)
        if len(active) < 2:
            return None
        return self.seen[min(active)[1]] + self.idle_timeout
