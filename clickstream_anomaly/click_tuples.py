"""The clicks of one clicks-stream record as plain ``(µs since the epoch, user, page)`` tuples, for a
per-record hot loop (the Flink job's): :func:`~clickstream_anomaly.records.decode_click_record`'s clicks
and errors, without a :class:`~clickstream_anomaly.records.Click` or a ``datetime`` per click.

The fast path takes what the project's producers write: each click a JSON object whose ``timestamp``,
``user`` and ``page`` are strings, the timestamp ``YYYY-MM-DDTHH:MM:SS`` with an optional ``.`` and 1-6
digits and a ``Z`` (:func:`~clickstream_anomaly.records.format_timestamp`'s form, or milliseconds). A
second's epoch value is computed once by the exact parser (:func:`~clickstream_anomaly.records.parse_timestamp`)
and cached. Any other record (a bad click, an offset, a number, whitespace, a byte-order mark) goes whole to
:func:`~clickstream_anomaly.records.decode_click_record`, so every error and every unusual click is its.
``tests/core/test_click_tuples.py`` checks that both give the same on generated records.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from .records import RecordError, decode_click_record, parse_timestamp, unicode_ok

#: ``(µs since the epoch, user, page)`` of one click.
ClickTuple = tuple[int, str, str]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
#: A second, strictly (hour 24 and leap seconds go to the exact parser, whatever its Python version accepts)
_SECOND = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
_WHITESPACE = b" \t\n\r\x0b\x0c".decode()  # what ``bytes.strip`` removes (the aggregated record's blank lines)
_JSON_WHITESPACE = " \t\n\r"  # what json.loads allows around a value
#: Seconds kept (a stream in event order needs one at a time); emptied when full, so hostile input
#: cannot grow it.
SECOND_CACHE = 4096
_seconds: dict[str, int] = {}
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set by its __init__ (the C scanner)


def micros(dt: datetime) -> int:
    """Microseconds since the epoch of an aware ``datetime``."""
    return (dt - _EPOCH) // _US


def _second(prefix: str) -> int | None:
    """µs since the epoch of ``YYYY-MM-DDTHH:MM:SS`` in UTC, ``None`` when it is not a valid second."""
    at = _seconds.get(prefix)
    if at is None:
        if not _SECOND.fullmatch(prefix):
            return None
        try:
            at = micros(parse_timestamp(prefix + "Z"))
        except RecordError:
            return None
        if len(_seconds) >= SECOND_CACHE:
            _seconds.clear()
        _seconds[prefix] = at
    return at


def timestamp_micros(text: str) -> int | None:
    """µs since the epoch of a timestamp in the fast path's form (``...T10:00:00.123Z``), else ``None``."""
    if text[-1:] != "Z":
        return None
    at = _second(text[:19])
    if at is None:
        return None
    fraction = text[19:-1]
    if not fraction:
        return at
    digits = fraction[1:]
    if fraction[0] != "." or not 1 <= len(digits) <= 6 or not (digits.isascii() and digits.isdigit()):
        return None
    return at + int(digits.ljust(6, "0"))


def _fast(text: str) -> ClickTuple | None:
    try:
        data, end = _scan(text, 0)  # json.loads' own parser, without its two white-space scans (~1 us)
    except (ValueError, StopIteration):
        return None
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):  # more after the value: json.loads' error
        return None
    if type(data) is not dict:
        return None
    ts, user, page = data.get("timestamp"), data.get("user"), data.get("page")
    if type(ts) is not str or type(user) is not str or type(page) is not str:
        return None
    user, page = user.strip(), page.strip()
    at = timestamp_micros(ts) if user and page and unicode_ok(user, page) else None
    return None if at is None else (at, user, page)


def decode_click_tuples(data: bytes | str) -> tuple[list[ClickTuple], list[RecordError]]:
    """:func:`~clickstream_anomaly.records.decode_click_record` of one record, its clicks as
    ``(µs since the epoch, user, page)``; the same clicks in the same order and the same errors."""
    text = data if isinstance(data, str) else None
    if text is not None:
        one = _fast(text)
        if one is not None:
            return [one], []
        lines = [line for line in text.split("\n") if line.strip(_WHITESPACE)]
        if len(lines) > 1:
            clicks = [_fast(line) for line in lines]
            if None not in clicks:
                return clicks, []  # type: ignore[return-value]
    slow, errors = decode_click_record(data)
    return [(micros(c.timestamp), c.user, c.page) for c in slow], errors
