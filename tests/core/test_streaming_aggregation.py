"""Streaming windows equal the batch features: one shard, several shards, late clicks, outages, retries."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from clickstream_anomaly.features import PageCounts, windows_from_frame, windows_to_records
from clickstream_anomaly.records import PAGES_PER_WINDOW, Click
from clickstream_anomaly.streaming.aggregation import (
    AggregatorState,
    PartialWindow,
    apply_batch,
    build_partials,
    run_aggregator,
)
from clickstream_anomaly.streaming.state import MemoryStore, StateConflict


def as_clicks(frame: pd.DataFrame) -> list[Click]:
    return [
        Click(ts.to_pydatetime(), u, p)
        for ts, u, p in zip(frame["timestamp"], frame["user"], frame["page"], strict=True)
    ]


def shard_records(clicks: list[Click], n_shards: int) -> dict[str, list[tuple[str, str, Click]]]:
    """Clicks split over shards by partition key (user), with increasing sequence numbers per shard."""
    out: dict[str, list[tuple[str, str, Click]]] = {f"shard-{i}": [] for i in range(n_shards)}
    for c in clicks:
        sid = f"shard-{zlib.crc32(c.user.encode()) % n_shards}"
        out[sid].append((sid, str(10**20 + len(out[sid])), c))
    return out


def run_stream(clicks: list[Click], n_shards: int, batch: int = 100, state: AggregatorState | None = None):
    state = state or AggregatorState()
    per_shard = shard_records(clicks, n_shards)
    emitted = []
    pos = dict.fromkeys(per_shard, 0)
    # Round-robin over shards, like concurrent event source mappings.
    while any(pos[s] < len(per_shard[s]) for s in per_shard):
        for sid, recs in per_shard.items():
            chunk = recs[pos[sid] : pos[sid] + batch]
            pos[sid] += len(chunk)
            if chunk:
                apply_batch(state, chunk, shards=per_shard)
                emitted.extend(state.outbox_windows())
                state.acknowledge(state.outbox_windows())
    return state, emitted


def final_windows(state: AggregatorState, emitted, last_start):
    state.close(until=int(pd.Timestamp(last_start).value))
    return emitted + state.outbox_windows()


def batch_windows(clicks: pd.DataFrame, sampling_rate: int = 100) -> list:
    """The batch computation's windows, with their clicks per page (``page_clicks``)."""
    pages = PageCounts()
    return windows_to_records(windows_from_frame(clicks, pages=pages, sampling_rate=sampling_rate), pages)


@pytest.mark.parametrize("n_shards", [1, 4])
def test_streaming_windows_equal_batch_features(day_clicks, n_shards):
    clicks = as_clicks(day_clicks)
    expected = batch_windows(day_clicks)
    state, emitted = run_stream(clicks, n_shards)
    got = final_windows(state, emitted, expected[-1].window_start)
    assert got == expected
    assert [w.page_clicks for w in got] == [w.page_clicks for w in expected]  # the clicks per page too
    assert sum(len(w.page_clicks or {}) for w in got) > len(got)
    outage = [w for w in got if w.window_start == datetime(2020, 7, 15, 17, 30, tzinfo=UTC)]
    assert outage and outage[0].clicks == 0  # the outage window is emitted with zeros
    assert state.late_dropped == 0
    # Bounded state: only windows within the lateness stay open.
    assert len(state.open) <= 3


@pytest.mark.parametrize("sampling_rate", [100, 30])
def test_a_window_with_more_pages_than_kept_keeps_the_batch_pages(sampling_rate):
    """Over 200 pages in a window, with ties at the cut: the same pages and (scaled) clicks as the batch."""
    t0 = pd.Timestamp("2020-07-14 00:00", tz="UTC")
    rows = [(t0 + pd.Timedelta(seconds=i % 500), f"u{i}", f"/p{i % 260:03d}") for i in range(1300)]
    rows += [(t0 + pd.Timedelta(seconds=3), "u", "/p250")] * 3 + [(t0 + pd.Timedelta(minutes=25), "v", "/")]
    frame = pd.DataFrame(rows, columns=["timestamp", "user", "page"])
    expected = batch_windows(frame, sampling_rate)
    state = AggregatorState(sampling_rate=sampling_rate)
    _, emitted = run_stream(as_clicks(frame), 2, state=state)
    got = final_windows(state, emitted, expected[-1].window_start)
    assert got == expected and len(expected[0].page_clicks) == PAGES_PER_WINDOW
    assert [w.page_clicks for w in got] == [w.page_clicks for w in expected]
    assert "/p250" in got[0].page_clicks and "/p259" not in got[0].page_clicks  # ties cut by page name


def test_a_window_open_in_a_state_saved_before_page_counts_is_sent_without_them():
    """A state written before the clicks per page were kept knows a window's pages, not their clicks: the
    window goes out with its features and no ``page_clicks`` (not wrong counts a detector would alarm on)."""
    state = AggregatorState()
    t0 = datetime(2020, 7, 14, 0, 1, tzinfo=UTC)
    state.add_clicks([Click(t0, "u", "/a"), Click(t0, "v", "/b")], now=1.0)
    old = state.to_dict()
    old["version"] = 1
    old["open"] = [{**p, "pages": sorted(p["pages"])} for p in old["open"]]
    for p in old["open"]:
        del p["pages_exact"]
    again = AggregatorState.from_dict(old)
    again.add_clicks([Click(t0, "w", "/a"), Click(t0 + timedelta(minutes=25), "w", "/a")], now=2.0)
    first = again.close(until=int(pd.Timestamp(t0).value))[0]
    assert (first.urls, first.users, first.clicks, first.page_clicks) == (2, 3, 3, None)


def test_partials_merge_exactly_across_shards():
    t = datetime(2020, 7, 15, 10, 1, tzinfo=UTC)
    a = build_partials([Click(t, "u1", "/a"), Click(t, "u2", "/b")])
    b = build_partials([Click(t, "u1", "/b"), Click(t, "u3", "/c")])
    (start,) = a
    merged = PartialWindow(start)
    merged.merge(a[start])
    merged.merge(b[start])
    w = merged.to_window(residual=0.5)
    assert (w.urls, w.users, w.clicks, w.residual) == (3, 3, 4, 0.5)  # u1 and /b count once
    with pytest.raises(ValueError):
        merged.merge(PartialWindow(start + 1))


def test_late_clicks_within_lateness_are_counted_and_later_ones_dropped():
    t0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)
    state = AggregatorState(lateness="10min")
    recs = [("s", str(i), Click(t0 + timedelta(minutes=m), f"u{i}", "/")) for i, m in enumerate([1, 5, 12, 15])]
    apply_batch(state, recs)
    # 12 min late (event clock 10:15): the 10:00 window closes at 10:20, so it is counted.
    apply_batch(state, [("s", "10", Click(t0 + timedelta(minutes=3), "late1", "/"))])
    apply_batch(state, [("s", "11", Click(t0 + timedelta(minutes=31), "u9", "/"))])  # clock 10:31
    # 10:00 window: 1, 5 and the late 3; 10:10 window: 12, 15 (closed at 10:30).
    assert [w.clicks for w in state.outbox_windows()] == [3, 2]
    # The 10:00 window is closed now: a click for it is dropped and counted.
    stats = apply_batch(state, [("s", "12", Click(t0 + timedelta(minutes=4), "late2", "/"))])
    assert stats.late_dropped == 1 and state.late_dropped == 1


def test_redelivered_records_are_not_counted_twice(day_clicks):
    clicks = as_clicks(day_clicks.iloc[:500])
    recs = shard_records(clicks, 1)["shard-0"]
    once = AggregatorState()
    apply_batch(once, recs)
    twice = AggregatorState()
    apply_batch(twice, recs[:300])
    apply_batch(twice, recs[200:])  # Lambda retried from record 200
    assert twice.duplicates_skipped == 100
    assert twice.to_bytes() != b"" and once.outbox == twice.outbox
    assert {k: v.to_dict() for k, v in once.open.items()} == {k: v.to_dict() for k, v in twice.open.items()}


def test_scheduled_tick_closes_windows_when_no_clicks_arrive():
    t0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)
    state = AggregatorState(lateness="10min")
    apply_batch(state, [("s", "1", Click(t0 + timedelta(minutes=5), "u", "/"))], now=1000.0)
    assert state.close(now=1000.0) == []
    # 15 wall minutes later the event clock is 10:20 -> the 10:00 window closes.
    assert [w.clicks for w in state.close(now=1000.0 + 15 * 60)] == [1]
    # An hour later: the six empty windows 10:10..11:00 close (window 11:00 ends 11:10, +10 min = 11:20).
    empties = state.close(now=1000.0 + 75 * 60)
    assert [w.window_start.strftime("%H:%M") for w in empties] == ["10:10", "10:20", "10:30", "10:40", "10:50", "11:00"]
    assert all(w.clicks == w.users == w.urls == 0 for w in empties)


def test_state_round_trips_and_restart_gives_same_windows(day_clicks):
    clicks = as_clicks(day_clicks.iloc[:3000])
    expected = windows_to_records(windows_from_frame(day_clicks.iloc[:3000]))
    recs = shard_records(clicks, 2)
    state = AggregatorState()
    emitted = []
    for rs in recs.values():
        apply_batch(state, rs[: len(rs) // 2], shards=recs)
        state = AggregatorState.from_bytes(state.to_bytes())  # cold start between batches
    for rs in recs.values():
        apply_batch(state, rs[len(rs) // 2 :], shards=recs)
    emitted = final_windows(state, emitted, expected[-1].window_start)
    assert emitted == expected
    with pytest.raises(ValueError, match="5min"):
        AggregatorState.from_bytes(state.to_bytes(), freq="5min")


class ConflictOnce(MemoryStore):
    """A store where another writer sneaks in once, between our read and our write."""

    def __init__(self, intruder):
        super().__init__()
        self.intruder = intruder
        self.conflicts = 0

    def save(self, data, etag):
        if self.intruder is not None:
            intruder, self.intruder = self.intruder, None
            raw, tag = self.load()
            state = AggregatorState.from_bytes(raw)
            intruder(state)
            super().save(state.to_bytes(), tag)
            self.conflicts += 1
        return super().save(data, etag)


def test_run_aggregator_survives_a_write_conflict_and_a_failed_send(day_clicks):
    clicks = as_clicks(day_clicks.iloc[:1200])
    recs = shard_records(clicks, 2)
    store = ConflictOnce(lambda st: apply_batch(st, recs["shard-1"]))
    sent = []
    run_aggregator(store, recs["shard-0"], send=sent.extend, shards=recs)
    assert store.conflicts == 1
    state = AggregatorState.from_bytes(store.data)
    assert state.checkpoints.keys() == {"shard-0", "shard-1"}  # both writers' records are in

    def broken(windows):
        raise ConnectionError("kinesis down")

    more = as_clicks(day_clicks.iloc[1200:2000])
    recs2 = [(sid, str(10**21 + i), c) for sid, rs in shard_records(more, 2).items() for i, (_, _, c) in enumerate(rs)]
    with pytest.raises(ConnectionError):
        run_aggregator(store, recs2, send=broken)
    pending = AggregatorState.from_bytes(store.data).outbox_windows()
    assert pending  # closed windows are kept, not lost
    run_aggregator(store, [], send=sent.extend)  # the next tick sends them
    assert sent[-len(pending) :] == pending
    assert not AggregatorState.from_bytes(store.data).outbox
    starts = [w.window_start for w in sent]
    assert starts == sorted(set(starts))


def test_transact_gives_up_after_too_many_conflicts():
    from clickstream_anomaly.streaming.state import transact

    class AlwaysConflict(MemoryStore):
        def save(self, data, etag):
            raise StateConflict("busy")

    with pytest.raises(StateConflict, match="gave up"):
        transact(AlwaysConflict(), AggregatorState.from_bytes, AggregatorState.to_bytes, lambda s: None, max_tries=3)


def test_version_1_state_loads_and_is_rewritten_as_a_versioned_state():
    import gzip
    import json

    state = AggregatorState()
    state.add_clicks([Click(datetime(2020, 7, 14, 0, 1, tzinfo=UTC), "u", "/")], now=1.0)
    v1 = gzip.compress(json.dumps(state.to_dict(), separators=(",", ":"), sort_keys=True).encode(), mtime=0)
    again = AggregatorState.from_bytes(v1)
    assert again.to_dict() == state.to_dict()
    assert (
        again.to_bytes().startswith(b"CSASTATE")
        and AggregatorState.from_bytes(again.to_bytes()).to_dict() == state.to_dict()
    )
