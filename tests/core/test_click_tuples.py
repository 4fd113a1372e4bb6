"""The clicks-stream decoder's tuple fast path (:mod:`clickstream_anomaly.click_tuples`) gives what
:func:`~clickstream_anomaly.records.decode_click_record` gives: the same clicks in the same order and the
same errors, on generated single and aggregated records, hostile ones included; and it decodes the
producers' own records without the exact decoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clickstream_anomaly import click_tuples
from clickstream_anomaly.click_tuples import decode_click_tuples, micros, timestamp_micros
from clickstream_anomaly.records import Click, decode_click_record, join_click_payloads

ONE = '{"timestamp":"2024-03-04T00:00:01.234Z","user":"u1","page":"/p1"}'

instants = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@st.composite
def stamps(draw: st.DrawFn) -> str:
    when = draw(instants)
    digits = draw(st.integers(0, 9))
    fraction = f"{when.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + ("." + fraction if digits else "")
    zone = draw(st.sampled_from(["Z", "Z", "Z", "z", "+00:00", "+01:30", "", " Z", "Z ", "\u00a0"]))
    text += zone
    mutation = draw(st.integers(0, 12))
    if mutation == 0:
        text = text.replace("T", " ", 1)
    elif mutation == 1:
        text = text.replace(":", "", 2)
    elif mutation == 2:
        text = " " + text
    elif mutation == 3:
        text = text.replace("0", "\u0660", 1)  # an Arabic-Indic zero
    elif mutation == 4:
        text = text[:11] + draw(st.sampled_from(["24", "99", "23"])) + text[13:17] + "60" + text[19:]
    elif mutation == 5:
        text = text.replace(".", ",", 1)
    return text


scalar = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=6))
names = st.one_of(st.sampled_from(["u1", " u2 ", "", " ", "\u2003u\u2003", "\u00e9", "\U0001f600"]), st.text())


@st.composite
def clicks(draw: st.DrawFn) -> str:
    fields: dict[str, object] = {
        "timestamp": draw(st.one_of(stamps(), scalar)),
        "user": draw(st.one_of(names, scalar)),
        "page": draw(st.one_of(st.sampled_from(["/", "/p1", " /a ", ""]), names, scalar)),
    }
    for key in draw(st.lists(st.sampled_from(["timestamp", "user", "page"]), max_size=1)):
        del fields[key]
    if draw(st.integers(0, 9)) == 0:
        fields["extra"] = [1, {"x": None}]
    text = json.dumps(fields, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([None, (",", ":")])))
    damage = draw(st.integers(0, 15))
    if damage == 0:
        text = text[: len(text) // 2]
    elif damage == 1:
        text = "\ufeff" + text
    elif damage == 2:
        text = " " + text + "\r\n"
    elif damage == 3:
        text = text + "x"
    elif damage == 4:
        text = "[" + text + "]"
    elif damage == 5:
        text = text.replace('"user"', '"user":"dup","user"', 1)
    return text


@st.composite
def good_clicks(draw: st.DrawFn) -> str:
    """Clicks as the producers write them (the fast path's), their users and pages with odd white space."""
    when = draw(instants).strftime("%Y-%m-%dT%H:%M:%S.%f")[: draw(st.sampled_from([19, 21, 23, 26]))] + "Z"
    user, page = draw(names), draw(st.sampled_from(["/", " /a ", "/p\u2003"]))
    return json.dumps({"timestamp": when, "user": user, "page": page}, ensure_ascii=draw(st.booleans()))


records = st.lists(st.one_of(good_clicks(), clicks()), min_size=1, max_size=4).flatmap(
    lambda parts: st.sampled_from(["\n", "\r\n", "\n\n", "\n \n", "\n\x0b\n", "\n\u2028\n"]).map(
        lambda sep: sep.join(parts)
    )
)


def exact(data: str | bytes):
    found, errors = decode_click_record(data)
    return [(micros(c.timestamp), c.user, c.page) for c in found], [(str(e), e.raw, e.line) for e in errors]


def fast(data: str | bytes):
    found, errors = decode_click_tuples(data)
    return found, [(str(e), e.raw, e.line) for e in errors]


@settings(max_examples=600, deadline=None)
@given(records)
@example(ONE)
@example(ONE + "\n" + ONE.replace("u1", "u2"))
@example('{"timestamp":"2024-03-04T24:00:00Z","user":"u","page":"/"}')
@example('{"timestamp":"2024-02-30T00:00:00Z","user":"u","page":"/"}')
@example("\ufeff" + ONE + "\n" + ONE)
@example(ONE + "\n\ufeff" + ONE)
def test_records_decode_as_the_exact_decoder_decodes_them(text):
    assert fast(text) == exact(text)
    assert fast(text.encode()) == exact(text.encode())


@given(stamps())
def test_a_timestamp_is_the_exact_parser_s_or_left_to_it(text):
    got = timestamp_micros(text)
    if got is not None:
        assert got == micros(Click.from_mapping({"timestamp": text, "user": "u", "page": "/"}).timestamp)


def test_the_producers_records_take_the_fast_path(monkeypatch):
    """Single clicks (``Click.to_json``, ms or µs or none) and aggregated ones never reach the exact decoder."""
    calls = []
    monkeypatch.setattr(click_tuples, "decode_click_record", lambda data: calls.append(data) or ([], []))
    t0 = datetime(2024, 3, 4, 23, 59, 59, tzinfo=UTC)
    produced = [Click(t0 + timedelta(microseconds=us), f"u{us}", "/p").to_json() for us in (0, 1000, 123456, 999999)]
    produced.append('{"timestamp":"2024-03-04T00:00:01.234Z","user":"u","page":"/"}\n')
    for data in [*produced, join_click_payloads(p.encode() for p in produced).decode()]:
        assert decode_click_tuples(data)[0]
    assert calls == []
    assert decode_click_tuples(produced[2]) == ([(micros(t0) + 123456, "u123456", "/p")], [])


def test_the_second_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(click_tuples, "SECOND_CACHE", 3)
    monkeypatch.setattr(click_tuples, "_seconds", {})
    got = [timestamp_micros(f"2024-03-04T00:00:{s:02d}.5Z") for s in range(10)]
    assert len(click_tuples._seconds) <= 3
    assert got == [micros(datetime(2024, 3, 4, 0, 0, s, 500000, tzinfo=UTC)) for s in range(10)]


@pytest.mark.parametrize("bad", ["", "{}", "null", "[]", "\n\n", '{"timestamp":"x","user":"u","page":"/"}'])
def test_bad_records_give_the_exact_decoder_s_errors(bad):
    assert fast(bad) == exact(bad)
    assert fast(bad)[1]


@pytest.mark.parametrize(
    "data",
    [
        ONE.replace("u1", "u\ud800x"),  # a str with a lone surrogate (before: UnicodeEncodeError in the exact one)
        ONE.replace("u1", "u\\ud800x").encode(),  # the JSON escape of one (before: a click no state could save)
        ONE.encode().replace(b"u1", b"u\xed\xa0\x80x"),  # its surrogate-pass bytes
        ONE.replace("/p1", "/p\\udfff"),  # in the page
        ONE + "\n" + ONE.replace("u1", "u\\ud800x"),  # inside an aggregated record
    ],
)
def test_a_lone_surrogate_is_a_bad_click_in_both_decoders(data):
    clicks, errors = fast(data)
    assert (clicks, errors) == exact(data)
    assert len(errors) == 1 and "not valid Unicode (a lone surrogate)" in errors[0][0]
    assert clicks == ([] if "\n" not in str(data) else [(micros(Click.from_json(ONE).timestamp), "u1", "/p1")])
