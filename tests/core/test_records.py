"""Record types: parsing, UTC handling, JSON/CSV round trips, clear errors."""

import json
from datetime import UTC, datetime

import pytest

from clickstream_anomaly.records import (
    CLICK_SEPARATOR,
    Click,
    Detection,
    RecordError,
    Window,
    decode_click_record,
    join_click_payloads,
    parse_timestamp,
)


def test_timestamps_naive_is_utc_aware_is_converted():
    assert parse_timestamp("2020-07-07T10:00:00") == datetime(2020, 7, 7, 10, tzinfo=UTC)
    assert parse_timestamp("2020-07-07T12:00:00+02:00") == datetime(2020, 7, 7, 10, tzinfo=UTC)
    assert parse_timestamp("2020-07-07T10:00:00Z") == datetime(2020, 7, 7, 10, tzinfo=UTC)
    with pytest.raises(RecordError, match="not ISO 8601"):
        parse_timestamp("07/07/2020")
    with pytest.raises(RecordError, match="empty timestamp"):
        parse_timestamp(" ")


def test_click_json_round_trip_and_errors():
    click = Click.from_json('{"timestamp": "2020-07-07T12:00:00+02:00", "user": "u1", "page": "/"}')
    assert click.to_json() == '{"timestamp":"2020-07-07T10:00:00Z","user":"u1","page":"/"}'
    assert Click.from_json(click.to_json()) == click
    with pytest.raises(RecordError, match="missing field"):
        Click.from_json('{"timestamp": "2020-07-07T10:00:00Z", "user": "u1"}')
    with pytest.raises(RecordError, match="empty user"):
        Click.from_json('{"timestamp": "2020-07-07T10:00:00Z", "user": " ", "page": "/"}')
    with pytest.raises(RecordError, match="not JSON"):
        Click.from_json("{nope")


def test_window_and_detection_round_trip():
    win = Window(parse_timestamp("2020-07-15T17:30:00Z"), 0, 0, 0, 0)
    assert Window.from_json(win.to_json()) == win
    det = Detection(
        win,
        "rcf-streaming",
        3.1,
        2.6,
        True,
        attribution={"urls": 0.5, "users": 0.6, "clicks": 1.2, "residual": 0.8},
        direction={"urls": "LOW", "users": "LOW", "clicks": "LOW", "residual": "LOW"},
        strength={"urls": 0.1, "users": 0.2, "clicks": 0.3, "residual": 0.4},
    )
    back = Detection.from_mapping(det.to_row())
    assert back.attribution == det.attribution and back.direction == det.direction
    assert back.is_anomaly is True and back.score == 3.1
    import json

    back2 = Detection.from_mapping(json.loads(det.to_json()))
    assert back2.strength == det.strength
    band = Detection(win, "deepar", 4.0, 0.0, True, p01=95.0, p50=120.0, p99=160.0)
    row = band.to_row()
    assert row["explanation"] == "" and row["p01"] == 95.0
    assert Detection.from_mapping(row).p99 == 160.0


def test_kda_explanation_strings_are_parsed():
    row = {
        "window_start": "2020-07-15T10:10:00Z",
        "urls": 18,
        "users": 1,
        "clicks": 39,
        "residual": 38,
        "detector": "rcf-streaming",
        "score": "2.9",
        "threshold": "2.6",
        "is_anomaly": "true",
        "explanation": '{"users":{"ATTRIBUTION_SCORE":"1.2000","STRENGTH":"0.9","DIRECTION":"LOW"}}',
    }
    det = Detection.from_mapping(row)
    assert det.attribution == {"users": 1.2} and det.direction == {"users": "LOW"}


def test_detections_csv_round_trips_through_the_one_writer():
    import csv
    import io

    from clickstream_anomaly.records import DETECTION_COLUMNS, write_detections_csv

    win = Window(parse_timestamp("2020-07-15T17:30:00Z"), 0, 0, 0, -0.5)
    dets = [
        Detection(
            win,
            "rcf-streaming",
            2.9,
            2.6,
            True,
            attribution={"clicks": 2.0, "users": 0.9},
            direction={"clicks": "LOW", "users": "LOW"},
            strength={"clicks": 1.0, "users": 0.5},
        ),
        Detection.from_band(win, 0.0, 145.0, 300.0, 488.0),
    ]
    buf = io.StringIO()
    assert write_detections_csv(dets, buf) == 2
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == list(DETECTION_COLUMNS)
    assert rows[0]["window_start"] == "2020-07-15T17:30:00Z"
    back = [Detection.from_mapping(r) for r in rows]
    assert back[0].attribution == dets[0].attribution and back[0].direction == dets[0].direction
    assert back[1].p01 == 145.0 and back[1].is_anomaly and back[1].score == dets[1].score


def test_clicks_stream_record_single_or_aggregated():
    t = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)
    clicks = [Click(t, f"u{i}", f"/p{i}") for i in range(3)]
    payloads = [c.to_json().encode() for c in clicks]
    assert join_click_payloads(payloads[:1]) == payloads[0]  # a single click is its JSON, as before
    assert decode_click_record(payloads[0]) == (clicks[:1], [])
    assert decode_click_record(json.dumps(clicks[0].to_dict(), indent=2)) == (clicks[:1], [])  # any whitespace
    data = join_click_payloads(payloads)
    assert data.count(CLICK_SEPARATOR) == 2
    assert decode_click_record(data) == (clicks, [])
    assert decode_click_record(data + b"\n") == (clicks, [])  # blank lines are not clicks


def test_bad_clicks_in_a_record_are_reported_with_their_reason():
    good = Click(datetime(2020, 7, 15, tzinfo=UTC), "u1", "/").to_json().encode()
    # A single bad record: the reason alone, as before aggregation existed.
    (clicks, (err,)) = decode_click_record(b"{nope")
    assert clicks == [] and str(err).startswith("not JSON")
    (clicks, (err,)) = decode_click_record(b'{"timestamp": "2020-07-15T10:00:00Z", "user": "u1"}')
    assert str(err) == "missing field(s): page"
    # Inside an aggregated record: which click, and the same reason; the good clicks are kept.
    data = join_click_payloads([good, b'{"timestamp":"x","user":"u2","page":"/"}', good, b"{nope"])
    clicks, errors = decode_click_record(data)
    assert len(clicks) == 2
    assert [e.line for e in errors] == [2, 4]
    assert str(errors[0]).startswith("click 2 of 4: bad timestamp 'x'")
    assert str(errors[1]).startswith("click 4 of 4: not JSON")
    assert decode_click_record(b"")[1][0].reason == "empty record: no click"
