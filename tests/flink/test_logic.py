"""The Flink job's operator logic (flink/clickstream_job/logic.py), plain Python: no PyFlink needed."""

import json
import pickle
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.baseline import TimeAwareBaseline
from clickstream_anomaly.baseline.pages import PageSettings, PageStream
from clickstream_anomaly.features import PageCounts, windows_from_frame
from clickstream_anomaly.records import PAGES_PER_WINDOW, Click, Window, join_click_payloads
from clickstream_anomaly.sources.settings import SourceSettings
from clickstream_anomaly.streaming.detection import new_state
from clickstream_anomaly.streaming.eventtime import EventClock
from flink.clickstream_job.logic import (
    ACCEPTED,
    DROPPED,
    LATE,
    NS_PER_MS,
    WATERMARK_MIN,
    JobSettings,
    OpenWindows,
    decode,
    detect,
    new_detector,
)

MIN = 60 * 1_000_000_000


def click(minute: float, user: str = "u1", page: str = "/") -> tuple[int, str, str]:
    return (int(minute * MIN), user, page)


def test_decode_single_aggregated_and_bad():
    one = Click(datetime(2024, 1, 1, 0, 1, tzinfo=UTC), "u1", "/a")
    two = Click(datetime(2024, 1, 1, 0, 2, tzinfo=UTC), "u2", "/b")
    clicks, rejects, _ = decode(one.to_json())
    assert clicks == [(int(pd.Timestamp("2024-01-01 00:01Z").value), "u1", "/a")] and rejects == []
    clicks, rejects, _ = decode(join_click_payloads([one.to_json().encode(), b'{"user":"x"}', two.to_json().encode()]))
    assert [c[1] for c in clicks] == ["u1", "u2"]
    assert [json.loads(r)["reason"] for r in rejects] == ["click 2 of 3: missing field(s): timestamp, page"]
    clicks, rejects, _ = decode(b"not json")
    assert clicks == [] and json.loads(rejects[0]) == {
        "reason": "not JSON: Expecting value: line 1 column 1 (char 0)",
        "raw": "not json",
    }


def test_windows_late_counted_dropped_and_empty_filled():
    wins = OpenWindows.for_settings(JobSettings(allowed_lateness="10min"))
    assert wins.add(click(1), watermark_ns=-(2**62)) == ACCEPTED
    assert wins.add(click(12, "u2"), watermark_ns=int(11.5 * MIN)) == ACCEPTED
    # the watermark passed 00:10 (the window's end): late, still counted
    assert wins.add(click(5, "u3", "/b"), watermark_ns=int(11.9 * MIN)) == LATE
    assert wins.close(int(19.9 * MIN)) == []
    closed = wins.close(wins.close_time(0))
    assert [(w.window_start.minute, w.users, w.urls, w.clicks, late) for w, late in closed] == [(0, 2, 2, 2, 1)]
    assert wins.add(click(6, "u4"), watermark_ns=int(20 * MIN)) == DROPPED  # window closed
    assert wins.add(click(55, "u5"), watermark_ns=int(20 * MIN)) == ACCEPTED
    starts = [w.window_start.minute for w, _ in wins.close(wins.close_time(50 * MIN))]
    assert starts == [10, 20, 30, 40, 50]  # the empty windows 20-40 come out too


def test_windows_equal_batch_features_with_residual():
    rows = [(m, f"u{m % 7}", f"/p{m % 3}") for m in range(0, 600, 3) if not 200 <= m < 300]  # an outage
    wins = OpenWindows.for_settings(JobSettings())
    out = []
    for m, user, page in rows:
        wins.add(click(m, user, page), watermark_ns=int((m - 5) * MIN))
        out += wins.close(int((m - 5) * MIN))
    out += wins.close(2**62)
    stream = pd.DataFrame([w.to_dict() for w, _ in out])
    frame = pd.DataFrame({"timestamp": [pd.Timestamp(m * MIN, tz="UTC") for m, _, _ in rows]})
    frame["user"], frame["page"] = [r[1] for r in rows], [r[2] for r in rows]
    batch = windows_from_frame(frame)
    assert stream["clicks"].tolist() == batch["clicks"].tolist()
    assert stream["users"].tolist() == batch["users"].tolist() and stream["urls"].tolist() == batch["urls"].tolist()
    assert stream["residual"].tolist() == batch["residual"].tolist()
    assert (batch["clicks"] == 0).sum() >= 9


def test_a_record_is_judged_against_the_watermark_before_it_then_moves_it():
    """Flink's bounded out-of-orderness watermark (max event time - out-of-orderness - 1 ms), moved after
    each record: no click of a record is late because of a newer click in the same record."""
    wins = OpenWindows.for_settings(JobSettings(out_of_orderness=60, allowed_lateness="10min"))
    assert wins.watermark == WATERMARK_MIN
    entry, dropped, late, opened = wins.add_record([click(9, "u1", "/a"), click(15, "u2", "/b"), click(9.5, "u1")])
    assert (dropped, late, opened) == ([], 0, [0, 10 * MIN])
    assert wins.watermark == entry[0] == 14 * MIN - NS_PER_MS  # 00:15 - 60 s - 1 ms
    # the users new to the window; the record's clicks per page
    assert entry[1] == [(0, 2, 0, ["u1"], {"/a": 1, "/": 1}), (10 * MIN, 1, 0, ["u2"], {"/b": 1})]
    # the watermark is past 00:09:59.999: a click for window 00:00 is late (counted), one for 00:10 is not
    entry, dropped, late, opened = wins.add_record([click(5, "u3"), click(12, "u2", "/b")])
    assert (dropped, late, opened) == ([], 1, [])
    assert entry[1] == [(0, 1, 1, ["u3"], {"/": 1}), (10 * MIN, 1, 0, [], {"/b": 1})]
    assert wins.close(wins.watermark) == []
    # 00:21 moves the watermark to 00:19:59.999, window 00:00's end + 10 min lateness: it closes
    wins.add_record([click(21)])
    closed = wins.close(wins.watermark)
    assert [(w.window_start.minute, w.users, w.urls, w.clicks, n) for w, n in closed] == [(0, 2, 2, 3, 1)]
    assert closed[0][0].page_clicks == {"/": 2, "/a": 1}
    entry, dropped, late, _ = wins.add_record([click(7, "u9"), click(21.5, "u9")])
    assert [c[1] for c in dropped] == ["u9"] and late == 0 and entry[1] == [(20 * MIN, 1, 0, ["u9"], {"/": 1})]


@pytest.mark.parametrize("bundle", [1, 7])
def test_the_journal_replayed_rebuilds_the_windows_exactly(bundle):
    """What the job keeps in keyed state (one journal entry per bundle of records, what they added; the open
    windows as one entry and what was emitted, when windows close) rebuilds the same windows: a restart
    continues identically. Records from two shards; a bundle's entry is what its records added since the last
    close (as the job writes it)."""
    rng = np.random.default_rng(5)
    minutes = np.sort(rng.uniform(0, 95, 3000)) + rng.uniform(-4, 0, 3000)  # out of order within 4 min
    records = [
        [click(m, f"u{rng.integers(400)}", f"/p{rng.integers(30)}") for m in minutes[i : i + int(rng.integers(1, 6))]]
        for i in range(0, 3000, 5)
    ]
    shards = ("a", "b")
    records = [(shards[0 if 20 <= j % 50 < 30 else j % 2], r) for j, r in enumerate(records)]  # b quiet at times
    settings = JobSettings(out_of_orderness=120, allowed_lateness="2min")

    def run(records, wins=None):
        wins = wins or OpenWindows.for_settings(settings, shards)
        journal, emitted, out = [], None, []
        for i in range(0, len(records), bundle):
            parts, touched = {}, set()
            for shard, record in records[i : i + bundle]:
                wins.count_record(record, shard, 0.0, parts)
                touched.add(shard)
                closed = wins.close(wins.watermark)
                if closed:
                    out += closed
                    journal, emitted = [wins.snapshot()], wins.emitted()
                    parts, touched = {}, set()
            if touched:
                journal.append(wins.entry(parts, touched))
        return wins, journal, emitted, out

    whole, _, _, want = run(records)
    want += whole.close(2**62)
    cut = (len(records) // 2 + 7) // bundle * bundle
    _, journal, emitted, got = run(records[:cut])
    restored = OpenWindows.for_settings(settings, shards)
    restored.restore_emitted(pickle.loads(pickle.dumps(emitted)))
    for entry in pickle.loads(pickle.dumps(journal)):
        restored.replay(entry)
    assert restored.clocks.newest == run(records[:cut])[0].clocks.newest
    wins, _, _, rest = run(records[cut:], restored)
    got += rest + wins.close(2**62)
    assert [(w.to_dict(), w.page_clicks, n) for w, n in got] == [(w.to_dict(), w.page_clicks, n) for w, n in want]
    assert len(want) >= 9 and sum(n for _, n in want) > 0  # late clicks were counted along the way


def test_one_record_s_entry_is_the_entry_of_its_parts():
    wins = OpenWindows.for_settings(JobSettings())
    entry, dropped, late, opened = wins.add_record([click(1, "u1", "/a"), click(2, "u2", "/a")], "", 0.0)
    assert entry[1] == [(0, 2, 0, ["u1", "u2"], {"/a": 2})] and entry[2] == (("", 2 * MIN),)
    assert (dropped, late, opened) == ([], 0, [0])


def test_aggregated_records_give_the_batch_windows():
    """Records of several clicks (the producer's aggregation) counted a record at a time equal the batch."""
    rng = np.random.default_rng(1)
    rows = sorted((float(m), f"u{rng.integers(50)}", f"/p{rng.integers(9)}") for m in rng.uniform(0, 300, 2000))
    rows = [r for r in rows if not 100 <= r[0] < 160]  # an outage
    wins = OpenWindows.for_settings(JobSettings())
    out = []
    for i in range(0, len(rows), 7):
        record = [click(m, u, p) for m, u, p in rows[i : i + 7]]
        _, dropped, _, _ = wins.add_record(record)
        assert dropped == []
        out += wins.close(wins.watermark)
    out += wins.close(2**62)
    frame = pd.DataFrame({"timestamp": [pd.Timestamp(int(m * MIN), tz="UTC") for m, _, _ in rows]})
    frame["user"], frame["page"] = [r[1] for r in rows], [r[2] for r in rows]
    batch = windows_from_frame(frame)
    stream = pd.DataFrame([w.to_dict() for w, _ in out])
    for column in ("clicks", "users", "urls", "residual"):
        assert stream[column].tolist() == batch[column].tolist()
    assert (batch["clicks"] == 0).sum() >= 5


def test_page_clicks_equal_the_batch_page_counts_sampled_with_ties_at_the_cut():
    """Windows of 300 distinct pages (75 each with 1, 2, 3 and 4 clicks: the 200th place falls among the
    2-click pages) from a source that logs 30 % of the requests: ``page_clicks`` is the batch's
    ``PageCounts`` (the top 200 of the raw counts, ties by page name, then scaled), ``{}`` for the empty
    window; the windows' clicks are scaled as the batch's."""
    rng = np.random.default_rng(8)
    rows = []
    for w in (0, 1, 3):  # window 00:20 is empty
        clicks = [(f"/p{i}", f"u{rng.integers(40)}") for i in range(300) for _ in range(1 + i % 4)]
        rng.shuffle(clicks)
        rows += [(10 * w + 10 * k / len(clicks), user, page) for k, (page, user) in enumerate(clicks)]
    source = SourceSettings(salt="a shared secret salt", sampling_rate=30)
    settings = JobSettings(clicks_format="cloudfront-realtime", source=source)
    assert settings.sampling_rate == 30 and JobSettings(source=source).sampling_rate == 100  # clicks: not sampled
    wins = OpenWindows.for_settings(settings)
    out = []
    for i in range(0, len(rows), 3):
        wins.add_record([click(m, u, p) for m, u, p in rows[i : i + 3]])
        out += wins.close(wins.watermark)
    out += wins.close(2**62)
    frame = pd.DataFrame({"timestamp": [pd.Timestamp(int(m * MIN), tz="UTC") for m, _, _ in rows]})
    frame["user"], frame["page"] = [r[1] for r in rows], [r[2] for r in rows]
    pages = PageCounts()
    batch = windows_from_frame(frame, sampling_rate=30, pages=pages)
    per_window = pages.of_window()
    want = [per_window.get(ts, {}) for ts in batch["window_start"]]
    assert [w.page_clicks for w, _ in out] == want
    assert [len(p) for p in want] == [PAGES_PER_WINDOW, PAGES_PER_WINDOW, 0, PAGES_PER_WINDOW]
    assert sorted(p for p, n in want[0].items() if n == 7) == sorted(f"/p{i}" for i in range(1, 300, 4))[:50]  # 2 -> 7
    stream = pd.DataFrame([w.to_dict() for w, _ in out])
    for column in ("clicks", "users", "urls", "residual"):
        assert stream[column].tolist() == batch[column].tolist()
    assert stream["clicks"].tolist() == [2500, 2500, 0, 2500]  # 750 clicks at 30 %
    assert json.loads(out[2][0].to_json())["page_clicks"] == {}


def test_a_journal_of_the_job_before_page_counts_replays_with_page_clicks_unknown():
    """State the job wrote before page counts (per window the pages new to it, no counts): a window open at
    the upgrade comes out with ``page_clicks`` None, never partial counts, through a later snapshot too,
    with its distinct pages exact; the windows after it have their counts."""
    old_journal = [
        (4 * MIN, [(0, 2, 0, ["u1", "u2"], ["/a", "/b"])], (("", 6 * MIN),)),
        (5 * MIN, [(0, 1, 0, [], [])], (("", 7 * MIN),)),
    ]
    wins = OpenWindows.for_settings(JobSettings())
    for entry in pickle.loads(pickle.dumps(old_journal)):
        wins.replay(entry)
    wins.add_record([click(8, "u3", "/a"), click(9, "u1", "/c")])
    restored = OpenWindows.for_settings(JobSettings())
    restored.replay(pickle.loads(pickle.dumps(wins.snapshot())))
    restored.add_record([click(9.5, "u1", "/a"), click(12, "u1", "/a"), click(13, "u2", "/d")])
    closed = [w for w, _ in restored.close(2**62)]
    assert [(w.urls, w.users, w.clicks) for w in closed] == [(3, 3, 6), (2, 2, 2)]
    assert [w.page_clicks for w in closed] == [None, {"/a": 1, "/d": 1}]
    assert '"page_clicks"' not in closed[0].to_json()


def test_detect_is_the_detector_lambdas_state():
    settings = JobSettings()
    pages = PageStream(PageSettings(freq="10min"))
    mine, lambdas = new_detector(settings), new_state(None, 0, TimeAwareBaseline(window="10min"), pages)
    for i in range(3):
        window = Window(datetime(2024, 1, 1, 0, 10 * i, tzinfo=UTC), 3, 5, 9, 0.5, page_clicks={"/": 9})
        assert detect(mine, window) == [d.to_json() for d in lambdas.step([window])]
        assert mine.outbox == []


def test_settings_are_checked():
    assert JobSettings().lateness_ns == 10 * MIN and NS_PER_MS == 1_000_000
    with pytest.raises(ValueError, match="detectors"):
        JobSettings(detectors=("deepar",))
    with pytest.raises(ValueError, match="key"):
        JobSettings(key="page")
    assert JobSettings(allowed_lateness="0").lateness_ns == 0
    with pytest.raises(ValueError, match="bundle_records"):
        JobSettings(bundle_records=0)
    with pytest.raises(ValueError, match="detector_rules: baseline has no rule huber"):
        JobSettings(detector_rules='{"baseline": {"huber": 2}}')


def test_the_job_s_detector_rules_reach_a_new_and_a_restored_detector_state():
    settings = JobSettings(detector_rules='{"baseline": {"point_threshold": 7}, "baseline-pages": {"surge_z": "inf"}}')
    state = new_detector(settings)
    assert state.baseline is not None and state.baseline.point_threshold == 7
    assert state.pages is not None and state.pages.settings.surge_z == float("inf")
    restored = type(state).from_bytes(new_detector(JobSettings()).to_bytes()).take_rules(settings.rules)
    assert restored.baseline is not None and restored.baseline.point_threshold == 7


def test_a_mis_dated_click_is_rejected_before_it_can_move_the_watermark():
    """Issue #14's event-time policy in the Flink engine, as in the Lambda aggregator."""

    def record(*whens: datetime) -> bytes:
        return join_click_payloads([Click(w, "u1", "/a").to_json().encode() for w in whens])

    def ns(when: datetime) -> int:
        return int(pd.Timestamp(when).value)

    t = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    # live: the wall clock is 00:10
    now = datetime(2024, 1, 1, 0, 10, tzinfo=UTC).timestamp()
    live = EventClock()
    clicks, rejects, rejected = decode(
        record(t, datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)), live, now
    )
    assert [c[0] for c in clicks] == [ns(t)] and rejected == 2 and len(rejects) == 2
    first, second = (json.loads(r)["reason"] for r in rejects)
    assert "before 2000-01-01" in first and "ahead of the wall clock" in second
    assert live.clock == t.timestamp()  # the rejected clicks did not move the clock
    # a replay (no wall clock): a click a day ahead of the newest one is rejected, two hours ahead is not
    replay = EventClock()
    clicks, rejects, rejected = decode(record(t, t + timedelta(days=1), t + timedelta(hours=2)), replay, None)
    assert [c[0] for c in clicks] == [ns(t), ns(t + timedelta(hours=2))] and rejected == 1
    assert "ahead of the event clock" in json.loads(rejects[0])["reason"]
    # without a clock nothing is checked (the unit tests of the windows feed any time)
    assert decode(record(datetime(2100, 1, 1, tzinfo=UTC)))[2] == 0


def test_cloudfront_realtime_records_decode_as_the_aggregator_decodes_them():
    """Issue #16 in the Flink engine: clicks_format=cloudfront-realtime, the aggregator's one decoder."""
    from clickstream_anomaly.sources.settings import SourceSettings
    from clickstream_anomaly.sources.stream import decode_stream_records

    source = SourceSettings(salt="a shared secret salt")
    t = datetime(2020, 7, 15, 10, 0, tzinfo=UTC).timestamp()

    def realtime(minute: float, ip: str, uri: str, status: str = "200") -> bytes:
        fields = [f"{t + minute * 60:.3f}", ip, status, "GET", uri, "Mozilla/5.0%20(X11)", "-"]
        return ("\t".join(fields) + "\n").encode()

    records = [realtime(1, "192.0.2.1", "/a?x=1"), realtime(2, "192.0.2.2", "/app.js"), b"\tnot\ta record\n"]
    for data in records:
        clicks, rejects, _ = decode(data, fmt="cloudfront-realtime", source=source)
        ((want, errors),) = decode_stream_records([data], "cloudfront-realtime", source)
        assert clicks == [(int(pd.Timestamp(c.timestamp).value), c.user, c.page) for c in want]
        assert [json.loads(r)["reason"] for r in rejects] == [str(e) for e in errors]
    first, _, _ = decode(records[0], fmt="cloudfront-realtime", source=source)
    assert [c[2] for c in first] == ["/a"]  # the path without its query; the static asset is not a click
    with pytest.raises(ValueError, match="needs the source settings"):
        JobSettings(clicks_format="cloudfront-realtime")
