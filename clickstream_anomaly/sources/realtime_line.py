"""One CloudFront real-time log record decoded in plain Python: the block reader's rules
(:func:`.cloudfront_realtime.decode_records` then :func:`.derive.to_clicks`) without its pandas passes,
which cost ~2 ms a call however few records it is given (a Flink operator decodes one record at a time).

:meth:`LineDecoder.decode` gives exactly what the block reader gives for that record alone (the same clicks,
the same error reasons, the same ``Filtered`` counts), or ``None`` for a record it does not take on: one
whose fields pandas' C parser might read differently from a plain split (a ``\\r`` or NUL byte, bytes that
are not UTF-8, a leading byte-order mark) or whose timestamp is not plain digits (``1598907106.384``,
``1598907106384`` for ``timestamp(ms)``), so that the number parser's corner cases (``1e9``, ``inf``,
``0x10``, white space) stay the block reader's. The caller sends those to the block reader.
``tests/core/test_realtime_line.py`` checks the equality on the test logs and on generated hostile records.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import islice

import numpy as np
import pandas as pd

from ..records import Click, RecordError
from .derive import (
    MAX_NS,
    MIN_NS,
    Filtered,
    _bot_function,
    _message_text,
    _page_function,
    _static_function,
    _status,
    cookie_value,
    hash_key,
    uri_path,
)
from .settings import SourceSettings

#: The timestamps decoded here; any other text goes to the block reader (as do its bad-timestamp messages).
_PLAIN_STAMP = {"s": re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,3})?"), "ms": re.compile(r"[0-9]{1,13}")}
_MICROS_PER = {"s": 1e6, "ms": 1e3}  # derive.epoch_to_ns: ``per / 1_000``, as a float
_BOM = b"\xef\xbb\xbf"  # pandas drops it at the start of the data
#: Pseudonyms (and crawler verdicts) kept per decoder: an IP + user agent or cookie value recurs with each
#: of a visitor's clicks. Past this size the older half is dropped, so hostile input cannot grow it.
PSEUDONYM_CACHE = 65_536
#: ``(clicks, errors)`` of one record, as :func:`.stream.decode_stream_records` gives them.
Decoded = tuple[list[Click], list[RecordError]]


class LineDecoder:
    """The per-record decoder for one :class:`~.settings.SourceSettings` (its fields, rules and salt)."""

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        fields = list(settings.realtime_fields)
        index = {name: i for i, name in enumerate(fields)}
        self.width = len(fields)
        self.unit = "s" if "timestamp" in index else "ms"
        self.stamp = index["timestamp" if self.unit == "s" else "timestamp(ms)"]
        self.uri = index["cs-uri-stem"]
        self.ip, self.agent = index.get("c-ip"), index.get("cs-user-agent")
        self.status, self.method, self.cookie = index.get("sc-status"), index.get("cs-method"), index.get("cs-cookie")
        self.ranges = settings.status_ranges
        self.methods = set(settings.methods) if self.method is not None and settings.methods else None
        self.is_static = _static_function(settings) if settings.exclude_static else None
        bots = settings.exclude_good_bots and self.agent is not None and settings.good_bots
        self.is_bot = _bot_function(settings) if bots else None
        self.page = _page_function(settings)
        self.key = hash_key(settings.salt or "")
        self.pseudonyms: dict[tuple[str, str], str] = {}
        self.bots: dict[str, bool] = {}

    def decode(self, payload: bytes, filtered: Filtered | None = None) -> Decoded | None:
        """The clicks and errors of one non-blank real-time record (not a JSON click), counting the
        requests that are not clicks in ``filtered``; ``None`` when the block reader must decode it."""
        line = payload.rstrip(b"\r\n").replace(b"\n", b" ")  # decode_records' one line per record
        seen = line.count(b"\t") + 1
        if seen != self.width:
            why = f"wrong field count: expected {self.width} tab-separated fields (the configured ones), saw {seen}"
            return [], [self._error(why, payload)]
        if b"\r" in line or b"\x00" in line or line.startswith(_BOM):
            return None
        try:
            parts = line.decode("utf-8").split("\t")
        except UnicodeDecodeError:
            return None
        stamp = parts[self.stamp]
        if not _PLAIN_STAMP[self.unit].fullmatch(stamp):
            return None
        micros = round(float(stamp) * _MICROS_PER[self.unit])  # derive.epoch_to_ns, in Python
        if not MIN_NS // 1_000 <= micros <= MAX_NS // 1_000:
            return [], [self._error(f"bad timestamp: {_message_text(stamp)!r}", payload)]
        return self._request(parts, micros, payload, filtered)

    def _request(self, parts: list[str], micros: int, payload: bytes, filtered: Filtered | None) -> Decoded:
        """``derive.to_clicks`` for one request with a good timestamp: a click, a bad line or filtered out."""
        if self.status is not None:
            code = _status(parts[self.status])
            if code < 0:
                return [], [self._error(f"bad status: {_message_text(parts[self.status])!r}", payload)]
            if not any(lo <= code <= hi for lo, hi in self.ranges):
                return self._filtered("status", filtered)
        path = uri_path(parts[self.uri])
        if not path:
            return [], [self._error(f"no URI path: {_message_text(parts[self.uri])!r}", payload)]
        if self.methods is not None and str(parts[self.method]).upper() not in self.methods:  # type: ignore[index]
            return self._filtered("method", filtered)
        if self.is_static is not None and self.is_static(path):
            return self._filtered("static", filtered)
        agent = parts[self.agent] if self.agent is not None else ""
        if self.is_bot is not None and self._bot(agent):
            return self._filtered("bot", filtered)
        return [_click(micros, self._user(parts, agent), self.page(path))], []

    def _user(self, parts: list[str], agent: str) -> str:
        """``derive._users`` for one request: the hashed cookie, else the hashed IP + user agent, else ``""``."""
        name = self.settings.user_cookie
        if self.cookie is not None and name:
            value = cookie_value(parts[self.cookie], name)
            if value:
                return self._pseudonym(value, "c")
        if self.ip is None:
            return ""
        return self._pseudonym(parts[self.ip] + "\x1f" + agent, "h")

    def _bot(self, agent: str) -> bool:
        """``derive``'s declared-good crawler test, once per user agent (a few hundred recur)."""
        bot = self.bots.get(agent)
        if bot is None:
            bot = self.bots[agent] = self.is_bot(agent)  # type: ignore[misc]
            _bound(self.bots)
        return bot

    def _pseudonym(self, text: str, prefix: str) -> str:
        key = (text, prefix)
        user = self.pseudonyms.get(key)
        if user is None:
            # derive.pseudonyms of one value: the 8 bytes of its hash, big-endian, as 16 hex digits
            hashed = pd.util.hash_array(np.array([text], dtype=object), hash_key=self.key, categorize=False)
            user = self.pseudonyms[key] = prefix + format(int(hashed[0]), "016x")
            _bound(self.pseudonyms)
        return user

    @staticmethod
    def _error(reason: str, payload: bytes) -> RecordError:
        return RecordError(f"cloudfront-realtime record: {reason}", raw=payload[:200].decode("utf-8", "replace"))

    @staticmethod
    def _filtered(reason: str, filtered: Filtered | None) -> Decoded:
        if filtered is not None:
            filtered.add(reason, 1)
        return [], []


def _bound(cache: dict) -> None:
    """Drop the older half of ``cache`` (dicts keep insertion order) once it holds :data:`PSEUDONYM_CACHE`."""
    if len(cache) > PSEUDONYM_CACHE:
        for key in list(islice(cache, len(cache) // 2)):
            del cache[key]


def _click(micros: int, user: str, page: str) -> Click:
    sec, us = divmod(micros, 1_000_000)
    return Click(datetime.fromtimestamp(sec, UTC).replace(microsecond=us), user, page)
