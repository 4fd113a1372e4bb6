"""The Kinesis sender: batching limits, per-key order, retries of failed entries only, give-up, pacing."""

from __future__ import annotations

import json
import random
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest

from clickstream_anomaly.producer import (
    AGGREGATE_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    Backoff,
    Entry,
    KinesisSender,
    Pacer,
    ProducerError,
    click_entry,
    entries_from_file,
    partition_key,
    take_batch,
)
from clickstream_anomaly.records import Click, RecordError, decode_click_record


class FakeKinesis:
    """Records every PutRecords call; ``fail(call_no, entry_index, data)`` decides per entry failures."""

    def __init__(self, fail=None, raise_on=()):
        self.calls: list[list[dict]] = []
        self.written: list[tuple[str, bytes]] = []
        self.fail = fail or (lambda call, i, rec: None)
        self.raise_on = set(raise_on)

    def put_records(self, StreamName, Records):
        call = len(self.calls)
        self.calls.append(Records)
        if call in self.raise_on:
            raise ConnectionError("endpoint unreachable")
        out, failed = [], 0
        for i, rec in enumerate(Records):
            code = self.fail(call, i, rec)
            if code:
                failed += 1
                out.append({"ErrorCode": code, "ErrorMessage": "injected"})
            else:
                self.written.append((rec["PartitionKey"], rec["Data"]))
                out.append({"SequenceNumber": str(len(self.written)), "ShardId": "shardId-000000000000"})
        return {"FailedRecordCount": failed, "Records": out}


def entries(n: int, users: int = 50, seed: int = 0) -> list[Entry]:
    rng = random.Random(seed)
    t0 = datetime(2020, 7, 15, tzinfo=UTC)
    return [click_entry(Click(t0 + timedelta(seconds=i), f"u{rng.randrange(users)}", f"/p{i % 7}")) for i in range(n)]


def no_sleep_sender(client, **kw) -> tuple[KinesisSender, list[float]]:
    sleeps: list[float] = []
    return KinesisSender(client, "clicks", sleep=sleeps.append, backoff=Backoff(rng=random.Random(1)), **kw), sleeps


def test_take_batch_respects_count_bytes_and_one_entry_per_key():
    big = [Entry(b"x" * (MAX_RECORD_BYTES - 10), f"k{i}") for i in range(7)]
    batch = take_batch(deque(big))
    assert sum(e.size for e in batch) <= MAX_BATCH_BYTES
    assert len(batch) == 5  # the 6th would pass 5 MiB
    many = deque(Entry(b"{}", f"k{i}") for i in range(1200))
    assert len(take_batch(many)) == MAX_BATCH_RECORDS
    assert len(many) == 1200 - MAX_BATCH_RECORDS
    same = deque([Entry(b"1", "a"), Entry(b"2", "b"), Entry(b"3", "a"), Entry(b"4", "c")])
    first = take_batch(same)
    assert [e.data for e in first] == [b"1", b"2", b"4"]
    assert [e.data for e in same] == [b"3"]


def test_held_back_entries_are_overtaken_only_within_the_skew():
    # Key "hot" on every other entry, one entry per second of event time.
    pending = deque(Entry(b"%d" % i, "hot" if i % 2 == 0 else f"k{i}", ts=float(i)) for i in range(1000))
    batch = take_batch(pending, max_skew=30.0)
    assert batch[0].key == "hot" and sum(e.key == "hot" for e in batch) == 1
    assert max(e.ts for e in batch) <= 2.0 + 30.0  # the first held-back entry is at t=2
    assert pending[0].ts == 2.0  # and it is next


def test_unordered_batches_take_repeated_keys():
    pending = deque(Entry(b"%d" % i, "hot", ts=float(i)) for i in range(600))
    assert len(take_batch(pending, preserve_order=False)) == MAX_BATCH_RECORDS
    assert len(take_batch(deque(Entry(b"x", "hot") for _ in range(5)))) == 1


def test_oversized_record_is_rejected_and_long_keys_hashed():
    huge = Click(datetime(2020, 1, 1, tzinfo=UTC), "u", "/" + "p" * MAX_RECORD_BYTES)
    with pytest.raises(RecordError, match="1 MiB"):
        click_entry(huge)
    assert partition_key("u1") == "u1"
    long_key = partition_key("x" * 300)
    assert len(long_key) == 64 and long_key == partition_key("x" * 300)


def test_every_record_written_once_in_per_key_order_with_partial_failures():
    rng = random.Random(3)

    def fail(call, i, rec):
        if rng.random() < 0.3:
            return rng.choice(["ProvisionedThroughputExceededException", "InternalFailure"])
        return None

    data = entries(3000)
    client = FakeKinesis(fail)
    sender, sleeps = no_sleep_sender(client, max_attempts=50)
    result = sender.send(data)
    assert result.sent == len(data) and result.failed == 0
    assert sorted(d for _, d in client.written) == sorted(e.data for e in data)
    assert len(client.written) == len(data)  # nothing written twice
    # Order per partition key is the input order.
    for key in {e.key for e in data}:
        assert [d for k, d in client.written if k == key] == [e.data for e in data if e.key == key]
    # Only failed entries were re-sent: total entries sent = records + retries.
    assert sum(len(c) for c in client.calls) == len(data) + result.retried
    assert result.retried > 0 and result.throttled > 0
    assert all(len(c) <= MAX_BATCH_RECORDS for c in client.calls)
    assert sleeps and all(s >= 0 for s in sleeps)


def test_backoff_is_full_jitter_and_grows_exponentially():
    b = Backoff(base=0.1, cap=2.0, rng=random.Random(0))
    for rnd in range(8):
        ceiling = min(2.0, 0.1 * 2**rnd)
        delays = [b.delay(rnd) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.5 * ceiling  # spread over the whole range, not a fixed delay


def test_gives_up_after_bounded_attempts_and_reports_every_unsent_record(tmp_path):
    data = entries(1200, users=1000)
    # Entry "u7"'s records always fail; everything else succeeds.
    client = FakeKinesis(lambda call, i, rec: "InternalFailure" if rec["PartitionKey"] == "u7" else None)
    sender, sleeps = no_sleep_sender(client, max_attempts=3)
    with pytest.raises(ProducerError) as info:
        sender.send(data)
    result = info.value.result
    assert result.failed > 0
    written = {d for _, d in client.written}
    unsent = {e.data for e in result.unsent}
    assert written | unsent == {e.data for e in data}
    assert not written & unsent
    # The give-up rule (issue #14, problem 5): while calls wrote something, u7's failed record waited at most
    # 50 ms x the failed share of its call; the send gave up after max_attempts (3) calls in a row that wrote
    # nothing, u7's record alone, with an exponential backoff before the 2nd and 3rd of them.
    assert all(len(c) == 1 and c[0]["PartitionKey"] == "u7" for c in client.calls[-3:])
    assert len(sleeps) >= 2 and sum(sleeps[:-2]) < 0.05
    path = result.write_unsent(tmp_path / "unsent.jsonl")
    again = list(entries_from_file(path))
    assert [e.data for e in again] == [e.data for e in result.unsent]


def test_whole_call_error_keeps_batch_as_unsent():
    data = entries(700, users=100_000)
    client = FakeKinesis(raise_on={1})
    sender, _ = no_sleep_sender(client)
    with pytest.raises(ProducerError, match="unreachable") as info:
        sender.send(data)
    result = info.value.result
    first = len(client.calls[0])
    assert result.sent == first
    assert len(result.unsent) == len(data) - first
    assert {e.data for e in result.unsent} | {d for _, d in client.written} == {e.data for e in data}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_rate_pacing_sends_n_records_per_second():
    clock = FakeClock()
    client = FakeKinesis()
    sender = KinesisSender(client, "s", sleep=clock.sleep, clock=clock)
    result = sender.send(entries(100), pacer=Pacer(rate=20.0))
    assert result.sent == 100
    assert clock.now == pytest.approx(99 / 20.0)


def test_speedup_replays_event_time():
    clock = FakeClock()
    client = FakeKinesis()
    sender = KinesisSender(client, "s", sleep=clock.sleep, clock=clock)
    data = entries(61)  # one click per second of event time: 60 s
    sender.send(data, pacer=Pacer(speedup=10.0))
    assert clock.now == pytest.approx(6.0)
    with pytest.raises(ValueError):
        Pacer(speedup=2.0, rate=3.0)
    with pytest.raises(ValueError):
        Pacer(speedup=0.0)


def test_entries_from_csv_and_jsonl_agree(tmp_path):
    import gzip

    csv_path = tmp_path / "c.csv"
    csv_path.write_text("timestamp,user,page\n2020-07-15T10:00:00.123Z,u1,/a\n2020-07-15T10:00:01Z,u2,/b\n")
    jl = tmp_path / "c.jsonl.gz"
    with gzip.open(jl, "wt") as fh:
        for e in entries_from_file(csv_path):
            fh.write(e.data.decode() + "\n")
    a = [e.data for e in entries_from_file(csv_path)]
    b = [e.data for e in entries_from_file(jl)]
    assert a == b
    assert json.loads(a[0]) == {"timestamp": "2020-07-15T10:00:00.123000Z", "user": "u1", "page": "/a"}


def test_bad_jsonl_lines_error_with_line_number_or_are_skipped(tmp_path):
    from clickstream_anomaly.clicks_csv import BadLines

    p = tmp_path / "c.jsonl"
    p.write_text(
        '{"timestamp":"2020-07-15T10:00:00Z","user":"u1","page":"/"}\nnot json\n\n'
        '{"timestamp":"2020-07-15T10:00:00Z","user":"","page":"/"}\n'
    )
    with pytest.raises(RecordError, match=r"c.jsonl:2: not JSON"):
        list(entries_from_file(p))
    bad = BadLines()
    assert len(list(entries_from_file(p, skip_bad=True, bad=bad))) == 1
    assert bad.count == 2 and bad.examples[1].endswith("c.jsonl:4: empty user")


# ---- aggregation: a user's clicks share one Kinesis record ------------------------------------------------


def clicks_in(data: bytes) -> list[bytes]:
    """The click JSON payloads of one written record (single or aggregated)."""
    clicks, errors = decode_click_record(data)
    assert not errors
    return [c.to_json().encode() for c in clicks]


def test_aggregation_packs_a_keys_entries_in_order_within_the_byte_limit():
    data = entries(400, users=5)  # one click a second, 5 users: ~80 clicks each
    pending = deque(data)
    batch = take_batch(pending, aggregate_bytes=2000, max_skew=1e9)
    assert len(batch) == 5 and pending  # per-user order: a key's next record waits for the next call
    for rec in batch:
        assert rec.size <= 2000 and rec.count == len(clicks_in(rec.data))
        mine = [e.data for e in data if e.key == rec.key]
        assert clicks_in(rec.data) == mine[: rec.count]  # the key's first clicks, in input order
    assert len({rec.key for rec in batch}) == len(batch)  # per-user order: one record per key per call
    rest = take_batch(pending, aggregate_bytes=2000, max_skew=1e9)
    for rec in rest:  # the next call continues each key where the last one stopped
        first = next(r for r in batch if r.key == rec.key)
        mine = [e.data for e in data if e.key == rec.key]
        assert clicks_in(rec.data) == mine[first.count : first.count + rec.count]
    # One click bigger than the limit still goes, alone; the limit never goes above 1 MiB.
    big = Entry(b"x" * 3000, "k")
    assert take_batch(deque([big, Entry(b"y", "k")]), aggregate_bytes=2000) == [big]
    with pytest.raises(ValueError, match="1 MiB"):
        KinesisSender(FakeKinesis(), "s", aggregate_bytes=MAX_RECORD_BYTES + 1)


def test_aggregation_merges_only_within_the_skew():
    # One user, one click every 10 s of event time; a record may span at most 25 s.
    pending = deque(Entry(b"%d" % i, "u", ts=10.0 * i) for i in range(10))
    batch = take_batch(pending, aggregate_bytes=AGGREGATE_BYTES, max_skew=25.0)
    assert [rec.data for rec in batch] == [b"0\n1\n2"] and batch[0].count == 3
    assert pending[0].data == b"3"
    # Unordered: a full record of a key is followed by a new record of the same key in the same call.
    pending = deque(Entry(b"%d" % i, "u", ts=10.0 * i) for i in range(10))
    batch = take_batch(pending, aggregate_bytes=AGGREGATE_BYTES, max_skew=25.0, preserve_order=False)
    assert [rec.data for rec in batch] == [b"0\n1\n2", b"3\n4\n5", b"6\n7\n8", b"9"]


def test_aggregated_send_writes_every_click_once_in_per_key_order_with_partial_failures():
    rng = random.Random(5)

    def fail(call, i, rec):
        return "ProvisionedThroughputExceededException" if rng.random() < 0.3 else None

    data = entries(3000, users=40)
    client = FakeKinesis(fail)
    sender, _ = no_sleep_sender(client, max_attempts=50, aggregate_bytes=1000, max_skew=1e9)
    result = sender.send(data)
    assert result.sent == len(data) and result.failed == 0 and result.retried > 0
    assert result.records == len(client.written) < len(data) / 5
    written = [(k, c) for k, d in client.written for c in clicks_in(d)]
    assert sorted(c for _, c in written) == sorted(e.data for e in data)  # each click once
    for key in {e.key for e in data}:  # in input order per user
        assert [c for k, c in written if k == key] == [e.data for e in data if e.key == key]
    assert all(len(d) + len(k) <= 1000 for k, d in client.written)
    assert "as " in result.summary() and "aggregated Kinesis records" in result.summary()


def test_unsent_aggregated_records_are_written_one_click_a_line(tmp_path):
    data = entries(300, users=3)
    client = FakeKinesis(lambda call, i, rec: "InternalFailure" if rec["PartitionKey"] == "u1" else None)
    sender, _ = no_sleep_sender(client, max_attempts=2, aggregate_bytes=AGGREGATE_BYTES, max_skew=1e9)
    with pytest.raises(ProducerError, match="more click") as info:
        sender.send(data)
    result = info.value.result
    mine = [e.data for e in data if e.key == "u1"]
    assert result.failed == len(mine) and result.sent == len(data) - len(mine)
    path = result.write_unsent(tmp_path / "unsent.jsonl")
    assert [e.data for e in entries_from_file(path)] == mine


def test_linger_bounds_the_wait_of_a_paced_click():
    clock = FakeClock()
    sent_at: list[tuple[float, int]] = []

    class Timed(FakeKinesis):
        def put_records(self, StreamName, Records):
            sent_at.append((clock.now, sum(len(clicks_in(r["Data"])) for r in Records)))
            return super().put_records(StreamName, Records)

    sender = KinesisSender(Timed(), "s", sleep=clock.sleep, clock=clock, linger=0.1, aggregate_bytes=AGGREGATE_BYTES)
    data = entries(200, users=1000)
    result = sender.send(data, pacer=Pacer(rate=100.0))  # click n is due at n / 100 s
    assert result.sent == 200
    # ~10 clicks share each call, and no click waited more than the linger time.
    assert 15 <= len(sent_at) <= 25
    n = 0
    for when, count in sent_at:
        assert when - n / 100.0 <= 0.1 + 1e-9  # the call's oldest click
        n += count
    no_linger = KinesisSender(FakeKinesis(), "s", sleep=clock.sleep, clock=clock, linger=0.0)
    no_linger.send(entries(200, users=1000), pacer=Pacer(rate=100.0))
    assert len(no_linger.client.calls) == 200  # without it, each due click goes alone
