"""The Lambda engine's aggregator with per-shard state: throughput grows with the shards.

One invocation handles one shard's batch (the event source mapping sends one shard per batch):

1. read the small merge object (:class:`~clickstream_anomaly.streaming.merge.MergeState`): which windows
   were emitted, and the clicks it took of this shard;
2. read-modify-write *this shard's* object (:class:`~clickstream_anomaly.streaming.shard_state.ShardState`,
   ``If-Match``): release the emitted windows, skip re-delivered records, apply the event-time policy,
   add the clicks to the exact per-window sets; no other shard writes it, so no conflicts;
3. write the shard's small summary (clock; per window clicks, user count, page set);
4. when this batch moved the shard's clock past a window's end plus the allowed lateness (or windows
   wait in the merge outbox), merge: read every shard's summary, close what the watermark (the slowest
   active shard, idle ones left out) has passed, save the merge object with the windows in its outbox,
   send them, clear the outbox. The scheduled tick runs step 4 alone (idle shards, outages).

Each shard's invocation therefore costs in proportion to *its* users, not the stream's, and the shards
meet only in step 4, once per window per shard. What holds, as with the single object
(docs/reliability.md): a re-delivered record is skipped (per-shard checkpoint); windows are saved
before they are sent and re-sent identically after a crash; late clicks are counted; rejections wait in
the shard's object until they are sent. The single-object state of earlier versions is migrated on the
first run (:func:`migrate_legacy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from ..records import Window
from ..windowspec import DEFAULT_FREQ
from .aggregation import (
    DEFAULT_ALLOWED_LATENESS,
    AggregatorState,
    BatchStats,
    ClickRecord,
    apply_batch,
    last_closable,
)
from .eventtime import DEFAULT_POLICY, EventTimePolicy, Rejection, acknowledge_rejections
from .merge import MergeState
from .shard_state import ShardState, ShardSummary
from .state import CorruptState, MemoryStore, StateConflict, Store, component_of, location, transact

LEGACY_SHARD = "legacy-state"  # the migrated single-object state's open windows, as a shard that never sends


class ShardStores(Protocol):
    """Where the aggregator's objects live: the merge object, one state and one summary per shard, and
    the single-object state of earlier versions (``None`` when there is none)."""

    def merge(self) -> Store: ...

    def shard(self, shard: str) -> Store: ...

    def put_summary(self, shard: str, data: bytes) -> None: ...

    def summaries(self) -> dict[str, bytes]: ...

    def summary_location(self, shard: str) -> str: ...

    def legacy(self) -> Store | None: ...


@dataclass
class MemoryShardStores:
    """:class:`ShardStores` in memory (tests, benches, local runs)."""

    merge_store: MemoryStore = field(default_factory=MemoryStore)
    shards: dict[str, MemoryStore] = field(default_factory=dict)
    summary_data: dict[str, bytes] = field(default_factory=dict)
    legacy_store: MemoryStore | None = None

    def merge(self) -> Store:
        return self.merge_store

    def shard(self, shard: str) -> Store:
        return self.shards.setdefault(shard, MemoryStore())

    def put_summary(self, shard: str, data: bytes) -> None:
        self.summary_data[shard] = data

    def summaries(self) -> dict[str, bytes]:
        return dict(self.summary_data)

    def summary_location(self, shard: str) -> str:
        return f"memory summary of {shard}"

    def legacy(self) -> Store | None:
        return self.legacy_store


@dataclass(frozen=True)
class Settings:
    """The aggregator's configuration (``sampling_rate``: percent of the requests the source logs)."""

    freq: str = DEFAULT_FREQ
    lateness: str = DEFAULT_ALLOWED_LATENESS
    policy: EventTimePolicy = DEFAULT_POLICY
    sampling_rate: int = 100
    exact_users: bool = False  # the stream is not keyed by user: summaries carry the user sets


T = TypeVar("T")


def _decode(store: Store, raw: bytes | None, decode: Callable[[bytes | None], T]) -> T:
    try:
        return decode(raw)
    except Exception as exc:  # whatever a broken object raises
        if raw is None:
            raise
        raise CorruptState(location(store), f"{type(exc).__name__}: {exc}", component_of(store)) from exc


def read_summaries(stores: ShardStores) -> dict[str, ShardSummary]:
    """Every shard's summary; one that cannot be read raises :class:`CorruptState` (never skipped)."""
    out: dict[str, ShardSummary] = {}
    for sid, raw in stores.summaries().items():
        try:
            out[sid] = ShardSummary.from_json(raw)
        except Exception as exc:
            where = stores.summary_location(sid)
            raise CorruptState(where, f"{type(exc).__name__}: {exc}", "aggregator") from exc
    return out


def _merge_decoder(cfg: Settings) -> Callable[[bytes | None], MergeState]:
    def decode(raw: bytes | None) -> MergeState:
        state = MergeState.from_bytes(raw, freq=cfg.freq, lateness=cfg.lateness)
        state.sampling_rate = cfg.sampling_rate
        return state

    return decode


def load_merge(stores: ShardStores, cfg: Settings) -> MergeState:
    """The merge state as saved (a fresh one, or the migrated single-object state, when none is)."""
    raw, _ = stores.merge().load()
    if raw is None and migrate_legacy(stores, cfg):
        raw, _ = stores.merge().load()
    return _decode(stores.merge(), raw, _merge_decoder(cfg))


def migrate_legacy(stores: ShardStores, cfg: Settings) -> bool:
    """Turn the single-object state of earlier versions into the per-shard layout; True when done.

    Its open windows become the summary of a shard that never sends (:data:`LEGACY_SHARD`), so they are
    emitted as they were; each shard it knew starts with its checkpoint and clock, and inherits the
    open windows' user sets, so a user of those windows who clicks again counts once. The merge object
    takes its emitted windows, residual history and outbox. The old object is left as it was (the next
    ``state reset`` moves it aside with the others); it is not read again once the merge object exists.
    """
    legacy_store = stores.legacy()
    if legacy_store is None:
        return False
    raw, _ = legacy_store.load()
    if raw is None:
        return False
    old = _decode(legacy_store, raw, lambda r: AggregatorState.from_bytes(r, freq=cfg.freq, lateness=cfg.lateness))
    walls = [w for w in old.shard_wall.values() if w is not None]
    base = ShardState(freq=cfg.freq, lateness=cfg.lateness, shard=LEGACY_SHARD, open=old.open)
    base.next_start, base.first_wall, base.rejected = old.next_start, old.first_wall, old.rejected
    if old.shard_high:
        base.shard_high[LEGACY_SHARD] = max(old.shard_high.values())
        base.shard_wall[LEGACY_SHARD] = min(walls) if walls else None
    states = [base]
    for sid in sorted(old.checkpoints):
        st = ShardState(freq=cfg.freq, lateness=cfg.lateness, shard=sid, first_wall=old.first_wall)
        st.next_start = old.next_start
        st.checkpoints[sid] = old.checkpoints[sid]
        if sid in old.shard_high:
            st.shard_high[sid], st.shard_wall[sid] = old.shard_high[sid], old.shard_wall.get(sid)
        st.inherit([base])
        states.append(st)
    for st in states:
        store = stores.shard(st.shard)
        if store.load()[0] is None:
            store.save(st.to_bytes(), None)
            stores.put_summary(st.shard, st.summary(cfg.exact_users).to_json())
    merge = MergeState(freq=cfg.freq, lateness=cfg.lateness, next_start=old.next_start, residual=old.residual)
    merge.outbox, merge.expected, merge.first_wall = list(old.outbox), set(old.expected), old.first_wall
    try:
        stores.merge().save(merge.to_bytes(), None)
    except Exception:
        if stores.merge().load()[0] is None:  # not a concurrent migration: a real error
            raise
    return True


def _shard_decoder(
    stores: ShardStores, shard: str, parents: Iterable[str], cfg: Settings
) -> Callable[[bytes | None], ShardState]:
    def decode(raw: bytes | None) -> ShardState:
        state = ShardState.from_bytes(raw, shard=shard, freq=cfg.freq, lateness=cfg.lateness)
        if raw is None:  # a new shard (first run, or a child after a reshard): inherit the parents' users
            state.parents = tuple(parents)
            found = []
            for parent in parents:
                praw, _ = stores.shard(parent).load()
                if praw is not None:
                    found.append(ShardState.from_bytes(praw, shard=parent, freq=cfg.freq, lateness=cfg.lateness))
            state.inherit(found)
        return state

    return decode


#: The shard states this container saved last, by object: ``(etag, state)``. A warm container's next
#: batch of the same shard (the usual case) reads them with a conditional GET (304: no body, no decoding).
_WARM: dict[str, tuple[str, ShardState]] = {}
WARM_STATES = 2


def transact_warm(
    store: Store,
    decode: Callable[[bytes | None], ShardState],
    change: Callable[[ShardState], T],
    *,
    max_tries: int = 20,
) -> tuple[ShardState, T]:
    """:func:`~clickstream_anomaly.streaming.state.transact` for a shard's state, reusing the state this
    container saved when the object is still at that version (any other write, a reset included, changes
    its ETag and the object is read again). A failed change or write forgets the kept state."""
    where = location(store)
    for _ in range(max_tries):
        warm = _WARM.pop(where, None)
        check = getattr(store, "load_if_changed", None)
        if warm is not None and check is not None:
            raw, etag, changed = check(warm[0])
        else:
            (raw, etag), changed = store.load(), True
        state = _decode(store, raw, decode) if changed or warm is None else warm[1]
        out = change(state)
        try:
            tag = store.save(state.to_bytes(), etag)
        except StateConflict:
            continue
        _WARM[where] = (tag, state)
        while len(_WARM) > WARM_STATES:
            del _WARM[next(iter(_WARM))]
        return state, out
    raise StateConflict(f"gave up after {max_tries} conflicting writes")


def merge_windows(
    stores: ShardStores,
    *,
    send: Callable[[list[Window]], None],
    cfg: Settings,
    now: float | None = None,
    shards: Iterable[str] = (),
    until: int | None = None,
) -> tuple[int, int]:
    """The merge step: close what the shards' summaries allow, save, send, acknowledge.

    Returns ``(windows closed, windows sent)``. ``until`` (a window-start bound, ns) closes windows
    regardless of the watermark (the end of a replay). Writes the merge object only when a window
    closes, the stream's shards change or its outbox is not empty."""
    summaries = read_summaries(stores)
    expected = set(shards)
    decode = _merge_decoder(cfg)
    current = load_merge(stores, cfg)
    closed = 0
    if current.first_wall is None or not expected <= current.expected or current.closable(summaries, now, until):

        def change(st: MergeState) -> int:
            st.expected |= expected
            if st.first_wall is None:
                st.first_wall = now
            return len(st.close(summaries, now, until=until))

        current, closed = transact(stores.merge(), decode, MergeState.to_bytes, change)
    sent = 0
    if current.outbox:
        windows = current.outbox_windows()
        send(windows)
        transact(stores.merge(), decode, MergeState.to_bytes, lambda st: st.acknowledge(windows))
        sent = len(windows)
    return closed, sent


def _send_rejections(
    stores: ShardStores, shard: str, reject: Callable[[list[Rejection]], None], cfg: Settings
) -> tuple[ShardState, int]:
    raw, _ = stores.shard(shard).load()
    decode = _shard_decoder(stores, shard, (), cfg)
    state = _decode(stores.shard(shard), raw, decode)
    if not state.rejected:
        return state, 0
    pending = [Rejection.from_dict(d) for d in state.rejected]
    reject(pending)
    state, _ = transact(
        stores.shard(shard), decode, ShardState.to_bytes, lambda st: acknowledge_rejections(st.rejected, pending)
    )
    return state, len(pending)


#: A shard whose clock would close a window another shard holds back retries the merge this often (s).
MERGE_RETRY_SECONDS = 30.0


def _should_merge(st: ShardState, before: int | None, merge: MergeState, now: float | None) -> bool:
    """Merge when this batch moved the shard's clock past a window's end plus the lateness (it may be the
    last shard holding it), or, at most every :data:`MERGE_RETRY_SECONDS`, when its clock would close a
    window that is still open (another shard held it back, and may have gone idle since)."""
    after = st.high
    if after is None:
        return False
    step, late = st.step, st.lateness_ns
    if before is None or last_closable(after, step, late) > last_closable(before, step, late):
        return True
    first = merge.next_start if merge.next_start is not None else min(st.open, default=None)
    if first is None or last_closable(after, step, late) < first:
        return False
    return now is None or st.merge_tried is None or now - st.merge_tried >= MERGE_RETRY_SECONDS


def run_shard(  # noqa: PLR0913  (the settings are keyword-only)
    stores: ShardStores,
    shard: str,
    records: Iterable[ClickRecord],
    *,
    send: Callable[[list[Window]], None],
    cfg: Settings = Settings(),
    now: float | None = None,
    shards: Iterable[str] = (),
    parents: Iterable[str] = (),
    reject: Callable[[list[Rejection]], None] | None = None,
) -> BatchStats:
    """One invocation for one shard's records (see the module docstring); ``parents`` are the shard's
    parent shards (a reshard), whose open windows' users a new shard inherits."""
    records, shards = [r for r in records if r[0] == shard], list(shards)
    merge = load_merge(stores, cfg)
    taken = merge.taken.get(shard, {})
    store = stores.shard(shard)
    decode = _shard_decoder(stores, shard, parents, cfg)

    def change(st: ShardState) -> tuple[BatchStats, bool]:
        before = st.high
        missed = st.release(merge.next_start, taken)
        stats = apply_batch(st, records, now=now, policy=cfg.policy)
        stats.late_dropped += missed
        merge_now = _should_merge(st, before, merge, now) or bool(merge.outbox) or not set(shards) <= merge.expected
        if merge_now:
            st.merge_tried = now
        return stats, merge_now

    state, (stats, merge_now) = transact_warm(store, decode, change)
    if state.rejected and reject is not None:
        state, stats.rejections_sent = _send_rejections(stores, shard, reject, cfg)
    stores.put_summary(shard, state.summary(cfg.exact_users).to_json())
    if merge_now:
        stats.windows_closed, stats.windows_sent = merge_windows(stores, send=send, cfg=cfg, now=now, shards=shards)
    return stats


def run_tick(
    stores: ShardStores,
    *,
    send: Callable[[list[Window]], None],
    cfg: Settings = Settings(),
    now: float | None = None,
    shards: Iterable[str] = (),
    reject: Callable[[list[Rejection]], None] | None = None,
) -> BatchStats:
    """The scheduled tick: the merge step alone (wall time moves idle shards' clocks on, so an outage's
    windows close), and the rejections of shards that have not sent theirs."""
    stats = BatchStats()
    if reject is not None:
        for sid, summary in read_summaries(stores).items():
            if summary.pending_rejections:
                state, n = _send_rejections(stores, sid, reject, cfg)
                stats.rejections_sent += n
                stores.put_summary(sid, state.summary(cfg.exact_users).to_json())
    stats.windows_closed, stats.windows_sent = merge_windows(stores, send=send, cfg=cfg, now=now, shards=shards)
    return stats


def run_records(
    stores: ShardStores,
    records: Iterable[ClickRecord],
    *,
    send: Callable[[list[Window]], None],
    cfg: Settings = Settings(),
    now: float | None = None,
    shards: Iterable[str] = (),
    parents: Mapping[str, Iterable[str]] | None = None,
    reject: Callable[[list[Rejection]], None] | None = None,
) -> BatchStats:
    """:func:`run_shard` for each shard of ``records`` (a Lambda batch holds one), or :func:`run_tick`
    when there are none; returns the summed stats."""
    by_shard: dict[str, list[ClickRecord]] = {}
    for rec in records:
        by_shard.setdefault(rec[0], []).append(rec)
    if not by_shard:
        return run_tick(stores, send=send, cfg=cfg, now=now, shards=shards, reject=reject)
    total = BatchStats()
    for sid, recs in by_shard.items():
        got = run_shard(
            stores,
            sid,
            recs,
            send=send,
            cfg=cfg,
            now=now,
            shards=shards,
            parents=(parents or {}).get(sid, ()),
            reject=reject,
        )
        for name in ("clicks", "duplicates", "late_dropped", "windows_closed", "windows_sent", "rejected"):
            setattr(total, name, getattr(total, name) + getattr(got, name))
        total.rejections.extend(got.rejections)
        total.rejections_sent += got.rejections_sent
    return total
