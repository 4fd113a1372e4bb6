"""Event time per shard (flink/clickstream_job/shards.py) and the windows on it (logic.OpenWindows), plain
Python: no PyFlink needed."""

import pickle

import numpy as np
import pandas as pd

from clickstream_anomaly.features import windows_from_frame
from flink.clickstream_job.logic import JobSettings, OpenWindows
from flink.clickstream_job.shards import (
    NS_PER_MS,
    SHARD_SEPARATOR,
    WATERMARK_MIN,
    ShardClocks,
    split_record,
    tag_record,
)

MIN = 60 * 1_000_000_000
OOO_MS = 60_000  # 1 min of out-of-orderness


def wm_of(minute: float) -> int:
    """A shard's watermark when its newest click is at ``minute``."""
    return int(minute * MIN) - OOO_MS * NS_PER_MS - NS_PER_MS


def test_records_tagged_with_their_shard_split_at_the_first_separator():
    assert split_record(tag_record("shardId-000000000003", '{"a":1}')) == ("shardId-000000000003", '{"a":1}')
    data = f"x{SHARD_SEPARATOR}y\nz"  # a record may hold the separator itself: the id ends at the first
    assert split_record(tag_record("s1", data)) == ("s1", data)
    assert split_record('{"untagged":1}') == ("", '{"untagged":1}')


def test_the_watermark_is_the_minimum_over_the_shards():
    clocks = ShardClocks(OOO_MS, idle_timeout=60, known=frozenset({"a", "b"}), now=0)
    assert clocks.watermark("a", 30 * MIN, now=1) == WATERMARK_MIN  # b has not sent a click yet
    assert clocks.watermark("b", 5 * MIN, now=2) == wm_of(5)  # b is behind: it holds the watermark
    assert clocks.watermark("a", 40 * MIN, now=3) == wm_of(5)
    assert clocks.watermark("b", 20 * MIN, now=4) == wm_of(20)
    assert clocks.watermark("b", 10 * MIN, now=5) == wm_of(20)  # an older click does not move a shard back
    assert clocks.watermark("b", None, now=6) == wm_of(20)  # a record without clicks: heard from, no move
    assert clocks.items() == (("a", 40 * MIN), ("b", 20 * MIN))


def test_an_idle_shard_stops_holding_the_watermark_and_holds_again_when_it_sends():
    clocks = ShardClocks(OOO_MS, idle_timeout=60, known=frozenset({"a", "b"}), now=0)
    clocks.watermark("a", 10 * MIN, now=0)
    assert clocks.watermark("b", 2 * MIN, now=0) == wm_of(2)
    assert clocks.watermark("a", 50 * MIN, now=60) == wm_of(2)  # b sent nothing for 60 s: not idle yet
    assert clocks.watermark("a", 55 * MIN, now=60.5) == wm_of(55)  # now it is (a shard closed by a reshard too)
    assert clocks.watermark("b", 3 * MIN, now=61) == wm_of(3)  # b is back: the caller keeps the larger one


def test_unknown_shards_get_the_idle_timeout_to_show_up_after_a_start():
    """Kinesis shards are discovered: for ``idle_timeout`` after the start the watermark does not move, so a
    shard whose first records come a few seconds after another's full batch still holds it."""
    clocks = ShardClocks(OOO_MS, idle_timeout=30, known=None, now=100)
    assert clocks.watermark("a", 60 * MIN, now=101) == WATERMARK_MIN
    assert clocks.watermark("b", 1 * MIN, now=120) == WATERMARK_MIN
    assert clocks.watermark("a", 61 * MIN, now=130) == wm_of(1)  # held until 100 + 30 s, then the minimum


def test_a_known_shard_that_never_sends_holds_only_until_the_idle_timeout():
    clocks = ShardClocks(OOO_MS, idle_timeout=30, known=frozenset({"a", "b"}), now=0)
    assert clocks.watermark("a", 9 * MIN, now=29) == WATERMARK_MIN
    assert clocks.watermark("a", 9 * MIN, now=30) == wm_of(9)


def test_a_restart_makes_the_restored_shards_active_again():
    """The newest event time per shard is checkpointed; the wall times are not: after a restart (downtime of
    an hour here) every restored shard holds the watermark again, and new shards get the idle timeout."""
    clocks = ShardClocks(OOO_MS, idle_timeout=60, known=None, now=0)
    clocks.restore((("a", 30 * MIN), ("b", 12 * MIN)))
    clocks.restart(3600)
    assert clocks.watermark("a", 31 * MIN, now=3601) == WATERMARK_MIN  # held: shards may show up until 3660
    assert clocks.watermark("a", 32 * MIN, now=3660) == wm_of(12)  # b is restored and active: it holds


def shard_records(rng: np.random.Generator, shards: int, per_shard: int) -> dict[str, list[list]]:
    """Each shard's records in its own order: 1-3 clicks each over 4 hours, out of order within 30 s."""
    out = {}
    for s in range(shards):
        minutes = np.sort(rng.uniform(0, 240, per_shard)) + rng.uniform(-0.5, 0, per_shard)
        clicks = [(int(m * MIN), f"u{s}-{rng.integers(300)}", f"/p{rng.integers(20)}") for m in minutes]
        sizes = rng.integers(1, 4, per_shard)
        cuts = np.cumsum(sizes)[np.cumsum(sizes) < per_shard]
        out[f"shardId-{s:012d}"] = [list(r) for r in np.split(np.array(clicks, dtype=object), cuts)]
    return out


def run_backlog(records: dict[str, list[list]], tag: bool, cut: int | None = None) -> tuple[list, int]:
    """Read the shards as a backlog where the last shard lags, 50 records a second: its first record and the
    others' first half (in 45 s: the watermark waits the idle timeout, 60 s, for shards to show up), then
    round robin with the last shard read at a third of their speed. ``tag=False`` gives every record the same shard
    (the fused job before per-shard clocks). ``cut``: restart from the journal after that many records."""
    *ahead, behind = records
    half = {s: len(records[s]) // 2 for s in ahead}
    half[behind] = 1  # its first record, first: it shows up within the idle timeout
    order = [(s, r) for s in [behind, *ahead] for r in records[s][: half[s]]]
    queues = {s: records[s][half[s] :] for s in records}
    while any(queues.values()):
        for s in records:
            take = 1 if s == behind else 3
            order += [(s, r) for r in queues[s][:take]]
            queues[s] = queues[s][take:]
    settings = JobSettings(out_of_orderness=OOO_MS / 1000, allowed_lateness="10min", idle_timeout=60)
    wins = OpenWindows.for_settings(settings, None)
    journal, emitted, out, dropped = [], None, [], 0
    for i, (shard, record) in enumerate(order):
        if i == cut:
            wins = OpenWindows.for_settings(settings, None, now=100.0 + i * 0.02)
            if emitted is not None:
                wins.restore_emitted(pickle.loads(pickle.dumps(emitted)))
            for entry in pickle.loads(pickle.dumps(journal)):
                wins.replay(entry)
            wins.clocks.restart(100.0 + i * 0.02)
        now = i * 0.02 + (100.0 if cut is not None and i >= cut else 0)  # 50 records/s: no shard goes idle
        entry, lost, _, _ = wins.add_record([tuple(c) for c in record], shard if tag else "", now)
        dropped += len(lost)
        journal.append(entry)
        closed = wins.close(wins.watermark)
        if closed:
            out += closed
            journal, emitted = [wins.snapshot()], wins.emitted()
    return out + wins.close(2**62), dropped


def test_a_lagging_shard_loses_no_click_and_the_windows_equal_the_batch():
    records = shard_records(np.random.default_rng(3), shards=4, per_shard=3000)
    clicks = [c for shard in records.values() for r in shard for c in r]
    frame = pd.DataFrame({"timestamp": pd.to_datetime([c[0] for c in clicks], utc=True)})
    frame["user"], frame["page"] = [c[1] for c in clicks], [c[2] for c in clicks]
    batch = windows_from_frame(frame)
    out, dropped = run_backlog(records, tag=True)
    assert dropped == 0
    stream = pd.DataFrame([w.to_dict() for w, _ in out])
    for column in ("clicks", "users", "urls", "residual"):
        assert stream[column].tolist() == batch[column].tolist()
    restarted, dropped = run_backlog(records, tag=True, cut=5000)  # a restart in the middle: the same windows
    assert dropped == 0 and [(w.to_dict(), n) for w, n in restarted] == [(w.to_dict(), n) for w, n in out]
    _, dropped = run_backlog(records, tag=False)  # one clock for all shards: the lagging one's clicks are lost
    assert dropped > 1000


def test_the_watermark_moves_without_a_record_when_the_hold_ends_or_the_slowest_shard_goes_idle():
    """What the operator's processing-time timer does: a backlog read whole during the hold still closes its
    windows when the hold ends, and a shard that stopped (closed by a reshard) stops holding the others."""
    settings = JobSettings(out_of_orderness=OOO_MS / 1000, idle_timeout=60)
    wins = OpenWindows.for_settings(settings, None, now=0)
    wins.add_record([(30 * MIN, "u1", "/")], "a", now=1)
    wins.add_record([(20 * MIN, "u2", "/")], "b", now=2)
    assert wins.watermark == WATERMARK_MIN and wins.clocks.next_change(now=2) == 60
    assert not wins.advance(now=59) and wins.advance(now=60) and wins.watermark == wm_of(20)
    assert wins.clocks.next_change(now=60) == 62  # b, the slowest, goes idle 60 s after its last record
    wins.add_record([(31 * MIN, "u1", "/")], "a", now=61)
    assert not wins.advance(now=61.9) and wins.advance(now=62.1) and wins.watermark == wm_of(31)
    assert wins.clocks.next_change(now=62.1) is None  # a alone is active: only its records move it
    assert not wins.advance(now=500)  # every shard idle: nothing moves
    one = OpenWindows.for_settings(settings, ("file",), now=0)
    one.add_record([(30 * MIN, "u1", "/")], "file", now=1)
    assert one.watermark == wm_of(30) and one.clocks.next_change(now=1) is None  # a file: no hold, no timer
