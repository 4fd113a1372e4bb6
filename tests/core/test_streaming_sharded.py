"""The per-shard aggregator (streaming.sharded): windows equal the batch features with 1, 4 and 16 shards;
re-deliveries, crashes, write conflicts, idle shards, a reshard and the migrated single-object state."""

from __future__ import annotations

import pandas as pd
import pytest

from clickstream_anomaly.features import windows_from_frame, windows_to_records
from clickstream_anomaly.records import Click
from clickstream_anomaly.streaming.aggregation import AggregatorState, apply_batch
from clickstream_anomaly.streaming.merge import MergeState
from clickstream_anomaly.streaming.shard_state import ShardState
from clickstream_anomaly.streaming.sharded import (
    MemoryShardStores,
    Settings,
    merge_windows,
    run_shard,
    run_tick,
)
from clickstream_anomaly.streaming.state import MemoryStore
from tests.core.test_streaming_aggregation import as_clicks, batch_windows, shard_records


def drive(stores, per_shard, *, batch=100, sent=None, shards=None, now=None, parents=None):
    """Round-robin over the shards' records in batches, like concurrent event source mappings."""
    sent = [] if sent is None else sent
    pos = dict.fromkeys(per_shard, 0)
    while any(pos[s] < len(per_shard[s]) for s in per_shard):
        for sid, recs in per_shard.items():
            chunk = recs[pos[sid] : pos[sid] + batch]
            pos[sid] += len(chunk)
            if chunk:
                run_shard(
                    stores,
                    sid,
                    chunk,
                    send=sent.extend,
                    shards=per_shard if shards is None else shards,
                    now=now,
                    parents=(parents or {}).get(sid, ()),
                )
    return sent


def finish(stores, sent, last_start):
    merge_windows(stores, send=sent.extend, cfg=Settings(), until=int(pd.Timestamp(last_start).value))
    return sent


def shard_state(stores, sid) -> ShardState:
    return ShardState.from_bytes(stores.shards[sid].data)


@pytest.mark.parametrize("n_shards", [1, 4, 16])
def test_windows_equal_the_batch_features_with_clicks_partitioned_by_user(day_clicks, n_shards):
    expected = batch_windows(day_clicks)
    stores = MemoryShardStores()
    per = shard_records(as_clicks(day_clicks), n_shards)
    sent = drive(stores, per)
    # every window the slowest shard's last click closes is out without a tick; the rest wait for it
    mark = min(recs[-1][2].timestamp for recs in per.values())
    closable = [w for w in expected if w.window_start + pd.Timedelta(minutes=20) <= mark]
    assert sent == closable
    assert finish(stores, sent, expected[-1].window_start) == expected  # exactly once each, in order
    assert [w.page_clicks for w in sent] == [w.page_clicks for w in expected]  # the clicks per page too
    assert stores.merge_store.writes <= 2 * len(expected)  # one save and one acknowledgement per close, at most
    for sid in per:  # each shard learns the windows are out, and forgets them: nothing was missed
        run_shard(stores, sid, [], send=sent.extend)
        st = shard_state(stores, sid)
        assert st.checkpoints.keys() == {sid} and not st.open and st.late_dropped == 0


def test_a_redelivered_or_retried_batch_of_one_shard_doubles_nothing(day_clicks):
    expected = windows_to_records(windows_from_frame(day_clicks))
    per = shard_records(as_clicks(day_clicks), 4)
    stores = MemoryShardStores()
    sent: list = []
    sid = "shard-2"
    half = len(per[sid]) // 2
    drive(stores, {s: (r[:half] if s == sid else r[: len(r) // 2]) for s, r in per.items()}, sent=sent)
    # Lambda retries shard-2 from an earlier record (a partial failure), twice.
    for new in (50, 0):
        stats = run_shard(stores, sid, per[sid][half - 150 : half + 50], send=sent.extend, shards=per)
        assert (stats.duplicates, stats.clicks) == (200 - new, new)
    rest = {s: (r[half + 50 :] if s == sid else r[len(r) // 2 :]) for s, r in per.items()}
    drive(stores, rest, sent=sent)
    assert finish(stores, sent, expected[-1].window_start) == expected


def test_a_crash_before_the_windows_are_sent_resends_them_identically(day_clicks):
    expected = windows_to_records(windows_from_frame(day_clicks))
    per = shard_records(as_clicks(day_clicks), 4)
    stores = MemoryShardStores()
    sent: list = []
    noon = pd.Timestamp("2020-07-15 12:00", tz="UTC")
    cut = {
        s: sum(c.timestamp < noon - pd.Timedelta(hours=2 * (s == "shard-0")) for _, _, c in r) for s, r in per.items()
    }
    drive(stores, {s: r[: cut[s]] for s, r in per.items()}, sent=sent)  # shard-0 is two hours behind
    end = sum(c.timestamp < noon for _, _, c in per["shard-0"])
    catch_up = per["shard-0"][cut["shard-0"] : end]

    def broken(windows):
        raise ConnectionError("kinesis down")

    # shard-0 catches up and closes windows, but the features stream fails: the batch fails ...
    with pytest.raises(ConnectionError):
        run_shard(stores, "shard-0", catch_up, send=broken, shards=per)
    pending = MergeState.from_bytes(stores.merge_store.data).outbox_windows()
    assert pending  # ... and the closed windows are saved, not lost
    # Lambda retries the batch: every record is a duplicate now, and the outbox goes out first
    stats = run_shard(stores, "shard-0", catch_up, send=sent.extend, shards=per)
    assert stats.clicks == 0 and stats.duplicates == len(catch_up)
    assert sent[-len(pending) :] == pending
    assert not MergeState.from_bytes(stores.merge_store.data).outbox
    drive(stores, {s: r[end if s == "shard-0" else cut[s] :] for s, r in per.items()}, sent=sent)
    assert finish(stores, sent, expected[-1].window_start) == expected


class ConflictOnce(MemoryStore):
    """A merge object another writer (the tick, a concurrent shard) changes once between read and write."""

    def __init__(self, start: MemoryStore, intruder):
        super().__init__(start.data, start.version)
        self.intruder, self.conflicts = intruder, 0

    def save(self, data, etag):
        if self.intruder is not None:
            intruder, self.intruder = self.intruder, None
            raw, tag = self.load()
            state = MergeState.from_bytes(raw)
            intruder(state)
            super().save(state.to_bytes(), tag)
            self.conflicts += 1
        return super().save(data, etag)


def test_two_merges_at_once_emit_each_window_once(day_clicks):
    from clickstream_anomaly.streaming.sharded import read_summaries

    expected = windows_to_records(windows_from_frame(day_clicks))
    per = shard_records(as_clicks(day_clicks), 4)
    stores = MemoryShardStores()
    sent = drive(stores, {s: r[:300] for s, r in per.items()})
    # a concurrent merge (the tick) closes windows between this merge's read and its write
    conflict = ConflictOnce(stores.merge_store, lambda st: st.close(read_summaries(stores), until=None))
    stores.merge_store = conflict
    drive(stores, {s: r[300:] for s, r in per.items()}, sent=sent)
    assert conflict.conflicts == 1
    assert finish(stores, sent, expected[-1].window_start) == expected


def test_an_idle_shard_does_not_hold_the_windows_back_and_its_late_clicks_are_counted():
    t0 = pd.Timestamp("2020-07-15 10:00", tz="UTC").to_pydatetime()
    stores = MemoryShardStores()
    sent: list = []
    shards = ("a", "b")
    wall = 1_600_000_000.0

    def clicks(sid, first, minutes, user):
        return [
            (sid, str(first + i), Click(t0 + pd.Timedelta(minutes=m), f"{user}{i}", "/")) for i, m in enumerate(minutes)
        ]

    run_shard(stores, "b", clicks("b", 1, [1, 2], "v"), send=sent.extend, shards=shards, now=wall)
    run_shard(stores, "a", clicks("a", 1, [1, 3], "u"), send=sent.extend, shards=shards, now=wall)
    assert sent == []
    # b goes quiet; a moves on 35 minutes of event time within 30 s: b (not idle yet) holds the windows
    run_shard(stores, "a", clicks("a", 10, [15, 25, 36], "u"), send=sent.extend, shards=shards, now=wall + 30)
    assert sent == []
    # 2 minutes later b is idle: a's next batch closes 10:00..10:10 without it, b's clicks included
    run_shard(stores, "a", clicks("a", 20, [37], "u"), send=sent.extend, shards=shards, now=wall + 120)
    assert [(w.window_start.strftime("%H:%M"), w.clicks, w.users) for w in sent] == [("10:00", 4, 4), ("10:10", 1, 1)]
    # b wakes up with a click for the emitted 10:00 window: it is dropped and counted, not lost silently
    stats = run_shard(stores, "b", clicks("b", 3, [4, 38], "v"), send=sent.extend, shards=shards, now=wall + 130)
    assert stats.late_dropped == 1 and shard_state(stores, "b").late_dropped == 1
    # and an outage of both: the tick closes the windows by wall time alone
    run_tick(stores, send=sent.extend, shards=shards, now=wall + 3600)
    assert [w.window_start.strftime("%H:%M") for w in sent][-1] >= "11:00"
    assert [w.clicks for w in sent if w.window_start.strftime("%H:%M") == "10:30"] == [3]


def test_a_reshard_loses_nothing_and_the_children_count_a_parents_user_once(day_clicks):
    """shard-0 splits into shard-2 and shard-3 mid-stream (users re-partitioned by a new hash): the
    children start after the parent's last record, inherit its open windows' users, and the windows stay
    exactly the batch features."""
    import zlib

    expected = windows_to_records(windows_from_frame(day_clicks))
    clicks = as_clicks(day_clicks)
    cut = clicks[len(clicks) // 2].timestamp
    before = shard_records([c for c in clicks if c.timestamp < cut], 2)
    stores = MemoryShardStores()
    sent = drive(stores, before, shards=("shard-0", "shard-1"))
    after: dict[str, list] = {"shard-1": [], "shard-2": [], "shard-3": []}
    for c in (c for c in clicks if c.timestamp >= cut):
        sid = f"shard-{zlib.crc32(c.user.encode()) % 2}"
        if sid == "shard-0":  # the split: shard-0's users go to one of its two children
            sid = f"shard-{2 + zlib.crc32(c.user.encode()[::-1]) % 2}"
        seq = 10**21 + len(after[sid])
        after[sid].append((sid, str(seq), c))
    parents = {"shard-2": ("shard-0",), "shard-3": ("shard-0",)}
    open_shards = ("shard-1", "shard-2", "shard-3")
    drive(stores, after, sent=sent, shards=open_shards, parents=parents)
    assert len(sent) >= len(expected) - 3  # the finished parent does not hold the windows back
    got = finish(stores, sent, expected[-1].window_start)
    assert got == expected
    assert sum(w.clicks for w in got) == len(clicks)


def test_the_single_object_state_of_earlier_versions_is_migrated_exactly(day_clicks):
    """A deployed stack's ``aggregator/state.json.gz`` mid-stream: the per-shard engine continues it."""
    expected = windows_to_records(windows_from_frame(day_clicks))
    per = shard_records(as_clicks(day_clicks), 2)
    legacy = AggregatorState()
    sent: list = []
    for _sid, recs in per.items():
        apply_batch(legacy, recs[: len(recs) // 2], shards=per)
    sent.extend(legacy.outbox_windows()[:-1])  # the last closed window was never sent (a crash)
    legacy.outbox = legacy.outbox[-1:]
    stores = MemoryShardStores(legacy_store=MemoryStore(legacy.to_bytes()))
    # Lambda re-delivers a few records of each shard the old state had applied
    drive(stores, {s: r[len(r) // 2 - 20 :] for s, r in per.items()}, sent=sent)
    assert finish(stores, sent, expected[-1].window_start) == expected
    assert sum(shard_state(stores, s).duplicates_skipped for s in per) == 40
    assert stores.legacy_store is not None and stores.legacy_store.writes == 0  # left as it was


def test_the_shard_state_round_trips_with_any_user_ids():
    st = ShardState(shard="s")
    t = pd.Timestamp("2020-07-15 10:00", tz="UTC").to_pydatetime()
    users = ["a", "", "line\nbreak", "ü", "b"]
    apply_batch(st, [("s", str(i), Click(t, u, f"/p{i}")) for i, u in enumerate(users)])
    again = ShardState.from_bytes(st.to_bytes())
    (part,) = again.open.values()
    assert part.users == set(users) and part.clicks == 5 and again.checkpoints == {"s": 4}
    assert again.summary() == st.summary()


class CheckedStore(MemoryStore):
    """A store with S3's conditional GET (``load_if_changed``), counting the bodies it hands out."""

    def __init__(self):
        super().__init__()
        self.bodies = 0

    def load(self):
        self.bodies += self.data is not None
        return super().load()

    def load_if_changed(self, etag):
        if self.data is not None and etag == str(self.version):
            return None, etag, False
        return (*self.load(), True)


def test_a_warm_container_reuses_the_state_it_saved_until_someone_else_writes_it():
    from clickstream_anomaly.streaming import sharded

    sharded._WARM.clear()
    t = pd.Timestamp("2020-07-15 10:00", tz="UTC").to_pydatetime()
    stores = MemoryShardStores()
    store = stores.shards["s"] = CheckedStore()
    recs = [("s", str(i), Click(t + pd.Timedelta(seconds=i), f"u{i}", "/")) for i in range(30)]
    for i in range(3):
        run_shard(stores, "s", recs[10 * i : 10 * i + 10], send=list.extend)
    assert store.bodies == 0  # written by this container each time: never read back
    other = ShardState.from_bytes(store.data)  # another writer (the tick, a reset) changes the object
    other.late_dropped = 7
    store.save(other.to_bytes(), str(store.version))
    run_shard(stores, "s", recs[:12], send=list.extend)  # 12 records re-delivered: the object is read again
    again = ShardState.from_bytes(store.data)
    assert store.bodies == 1 and again.late_dropped == 7 and again.duplicates_skipped == 12
    assert sum(p.clicks for p in again.open.values()) == 30


def test_a_stream_not_keyed_by_user_needs_exact_user_sets(day_clicks):
    """Clicks spread over 4 shards at random (CloudFront real-time logs choose their own keys): with the
    user counts a user on two shards counts twice; with ``exact_users`` the windows are the batch ones."""
    import random

    expected = windows_to_records(windows_from_frame(day_clicks))
    rng = random.Random(0)
    per: dict[str, list] = {f"shard-{i}": [] for i in range(4)}
    for c in as_clicks(day_clicks):
        sid = f"shard-{rng.randrange(4)}"
        per[sid].append((sid, str(10**20 + len(per[sid])), c))
    counted = MemoryShardStores()
    got = finish(counted, drive(counted, per), expected[-1].window_start)
    ratio = [g.users / e.users for g, e in zip(got, expected, strict=True) if e.users]
    assert [g.clicks for g in got] == [e.clicks for e in expected] and [g.urls for g in got] == [
        e.urls for e in expected
    ]
    assert min(ratio) >= 1.0 and max(ratio) <= 4.0 and sum(ratio) / len(ratio) > 1.3  # overcounted, at most x4
    exact = MemoryShardStores()
    cfg = Settings(exact_users=True)
    sent: list = []
    pos = dict.fromkeys(per, 0)
    while any(pos[s] < len(per[s]) for s in per):
        for sid, recs in per.items():
            chunk, pos[sid] = recs[pos[sid] : pos[sid] + 100], pos[sid] + 100
            if chunk:
                run_shard(exact, sid, chunk, send=sent.extend, shards=per, cfg=cfg)
    merge_windows(exact, send=sent.extend, cfg=cfg, until=int(pd.Timestamp(expected[-1].window_start).value))
    assert sent == expected


def test_a_shard_summary_of_the_earlier_version_reads_pages_without_their_clicks():
    from clickstream_anomaly.streaming.shard_state import ShardSummary, WindowSummary

    old = b'{"version":1,"shard":"s","high":5,"wall":1.0,"first_wall":1.0,"windows":[[0,3,2,["/a","/b"]]],'
    old += b'"pending_rejections":0,"parents":[]}'
    assert ShardSummary.from_json(old).windows == {0: WindowSummary(3, 2, {"/a": 0, "/b": 0}, pages_exact=False)}
    now = ShardSummary("s", 5, 1.0, 1.0, {0: WindowSummary(3, 2, {"/a": 2, "/b": 1})})
    assert ShardSummary.from_json(now.to_json()) == now
