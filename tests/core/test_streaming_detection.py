"""Streaming detector: KDA semantics, state in S3 with conditional writes, restart = uninterrupted run."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from clickstream_anomaly.aws.s3_store import S3Store
from clickstream_anomaly.features import windows_from_frame, windows_to_records
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.kda import KdaRcfParameters, KdaRcfStream
from clickstream_anomaly.records import FEATURE_COLUMNS
from clickstream_anomaly.streaming.detection import (
    DetectorState,
    detection_from_kda,
    new_state,
    run_detector,
)
from clickstream_anomaly.streaming.state import MemoryStore, StateConflict

PARAMS = KdaRcfParameters(
    number_of_trees=20, sub_sample_size=32, time_decay=1000, shingle_size=1, with_directionality=True
)


@pytest.fixture(scope="module")
def windows():
    clicks, _ = generate(Scenario(start="2020-07-14 00:00", days=2, volume=0.5, seed=11))
    return windows_to_records(windows_from_frame(clicks))


def test_detections_match_kda_emulation_and_restart_gives_same_results(windows):
    reference = KdaRcfStream(FEATURE_COLUMNS, PARAMS, random_state=0)
    expected = [reference.process_row([float(v) for v in w.features]) for w in windows]
    store = MemoryStore()
    got = []
    for i in range(0, len(windows), 25):  # every batch is a cold start: state only from the store
        got += run_detector(store, windows[i : i + 25], params=PARAMS, send=lambda d: None)
    assert [d.score for d in got] == [s for s, _ in expected]
    assert [d.window for d in got] == windows
    assert all(d.score == 0 for d in got[: PARAMS.sub_sample_size])  # KDA's learning phase
    assert got[-1].direction is not None and set(got[-1].attribution) == set(FEATURE_COLUMNS)
    assert sum(got[-1].attribution.values()) == pytest.approx(got[-1].score, abs=1e-3)


def test_redelivered_windows_are_skipped_and_unsent_detections_are_kept(windows):
    store = MemoryStore()
    sent = []
    run_detector(store, windows[:40], params=PARAMS, send=sent.extend)
    run_detector(store, windows[30:50], params=PARAMS, send=sent.extend)  # 30..39 again
    assert [d.window for d in sent] == windows[:50]

    def broken(dets):
        raise ConnectionError("detections stream unavailable")

    with pytest.raises(ConnectionError):
        run_detector(store, windows[50:60], params=PARAMS, send=broken)
    assert len(DetectorState.from_bytes(store.data).outbox) == 10
    run_detector(store, [], params=PARAMS, send=sent.extend)  # next invocation sends the outbox
    assert [d.window for d in sent] == windows[:60]


def test_s3_state_conflict_between_two_invocations(windows):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="state")
        store = S3Store(s3, "state", "detector/state.bin")
        run_detector(store, windows[:5], params=PARAMS, send=lambda d: None)
        # Invocation A reads, then B writes, then A's write must fail and A must not overwrite B.
        raw, etag = store.load()
        a = DetectorState.from_bytes(raw)
        a.step(windows[5:6])
        run_detector(store, windows[5:8], params=PARAMS, send=lambda d: None)  # B
        with pytest.raises(StateConflict):
            store.save(a.to_bytes(), etag)
        assert DetectorState.from_bytes(store.load()[0]).last_window.startswith(
            windows[7].window_start.strftime("%Y-%m-%dT%H:%M")
        )


def test_detection_from_kda_explanation_text():
    w = windows_to_records(windows_from_frame(generate(Scenario(days=1, volume=0.2))[0]))[0]
    det = detection_from_kda(
        w,
        3.5,
        '{"users":{"DIRECTION":"LOW","STRENGTH":"1.2","ATTRIBUTION_SCORE":"2.0"},'
        '"clicks":{"DIRECTION":"HIGH","STRENGTH":"0.1","ATTRIBUTION_SCORE":"1.5"}}',
    )
    assert det.attribution == {"users": 2.0, "clicks": 1.5}
    assert det.direction == {"users": "LOW", "clicks": "HIGH"} and det.strength["users"] == 1.2
    assert new_state(PARAMS).model.columns == FEATURE_COLUMNS


def test_the_per_page_baseline_in_the_detector_state_equals_the_batch_detector_across_cold_starts():
    """baseline-pages in the streaming detector (the detector Lambda's and the Flink job's state): the
    windows' page_clicks through run_detector in batches, each a cold start from the store, give the
    batch detector's detections, page and clicks included (they travel in the detection's JSON)."""
    from clickstream_anomaly.baseline.pages import PageStream
    from clickstream_anomaly.detectors import PageBaselineDetector
    from clickstream_anomaly.features import PageCounts
    from clickstream_anomaly.records import PAGES

    clicks, _ = generate(Scenario(start="2020-07-14 00:00", days=3, volume=0.5, seed=11))
    broken = (clicks["page"] == clicks["page"].value_counts().index[0]) & (
        clicks["timestamp"].between("2020-07-16 13:00", "2020-07-16 14:30", inclusive="left")
    )
    clicks = clicks[~broken]  # the most popular page gets no click for 90 minutes on day 3
    counts = PageCounts()
    frame = windows_from_frame(clicks, pages=counts)
    det = PageBaselineDetector(pages=counts)
    expected = det.detect(frame)
    records = windows_to_records(frame, counts)
    store, got = MemoryStore(), []
    for i in range(0, len(records), 50):
        got += run_detector(
            store, records[i : i + 50], params=None, pages=PageStream(det.settings("10min")), send=lambda d: None
        )
    assert [d.detector for d in got] == [PAGES] * len(records)
    assert [d.to_json() for d in got] == [d.to_json() for d in expected]
    flagged = [d for d in got if d.is_anomaly]
    assert flagged and all(d.extra["page"] == det.pages_[0] for d in flagged)
