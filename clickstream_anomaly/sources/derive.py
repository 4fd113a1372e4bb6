"""Requests -> clicks: the one place that decides who the user is, what the page is and what counts.

Every reader turns its lines into :class:`Requests` (raw fields as object arrays, one row per line) and
calls :func:`to_clicks`. The work is done on the *distinct* values of each field (pandas ``factorize``),
which log files repeat heavily (a few thousand paths, user agents and seconds for a million lines), so the
per-value Python (URL splitting, regular expressions, cookie parsing) runs once per distinct value.

* **Page**: the URI path without its query string or fragment, rewritten by ``page_rules`` and, with
  ``collapse_ids``, with number / UUID / hex segments replaced by ``:id``.
* **User**: the ``user_cookie`` value (hashed) where the request has one, else a salted keyed hash of
  client IP + user agent (:func:`pseudonyms`); raw IPs never leave this module.
* **Counted**: status in ``statuses``, method in ``methods``, not a static asset, not a declared-good crawler.
  A request that does not count is *filtered* (counted in :class:`Filtered`), not a bad line.
* **Bad lines** (file, line, reason): a timestamp that does not parse, a missing or non-numeric status, a
  counted request without a path. With ``skip_bad`` they go to :class:`~clickstream_anomaly.clicks_csv.BadLines`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..clicks_csv import BadLines
from ..records import RecordError
from .settings import SourceSettings

#: A field of every row: an object ndarray, or a pandas Series of str (what the C parser gives, cheaper)
Column = np.ndarray | pd.Series
NAT = np.iinfo(np.int64).min  # a timestamp that did not parse
_HEX = np.array([f"{b:02x}" for b in range(256)], dtype="U2")
_ID_SEGMENT = re.compile(
    r"(?<=/)(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})(?=/|$)"
)


@dataclass
class Filtered:
    """Requests read but not counted as clicks, by reason (``status``, ``method``, ``static``, ``bot``)."""

    by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int) -> None:
        if n:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + int(n)

    @property
    def count(self) -> int:
        return sum(self.by_reason.values())

    def summary(self) -> str:
        if not self.count:
            return "no request filtered out"
        parts = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.by_reason.items()))
        return f"filtered out {self.count:,} request(s) that are not clicks ({parts})"


@dataclass
class Requests:
    """One block's requests: each field an object array of shape (n,) or None when the format lacks it.

    ``ts`` is int64 ns since the epoch (UTC) with :data:`NAT` where it did not parse; ``uri`` a path, a
    path with query, or a full URL; ``lines`` the 1-based line of each row; ``raw(i)`` the text of row i;
    ``errors`` maps rows already known to be bad to their reason; ``keep`` marks the rows that are requests
    at all (False for blank or header lines, which are neither clicks nor bad).
    """

    lines: np.ndarray
    ts: np.ndarray
    ts_text: Column
    uri: Column
    raw: Callable[[int], str]
    status: Column | None = None
    method: Column | None = None
    ip: Column | None = None
    user_agent: Column | None = None
    cookie: Column | None = None
    user: Column | None = None
    errors: dict[int, str] = field(default_factory=dict)
    keep: np.ndarray | None = None
    any_page: bool = False  # a mapped export: a page that is neither a path nor a URL is kept as it is
    _codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, distinct values)`` of field ``name`` (computed once): ``values[codes]`` is the field."""
        if name not in self._codes:
            codes, uniques = pd.factorize(getattr(self, name), use_na_sentinel=False)
            self._codes[name] = (np.asarray(codes), np.asarray(uniques, dtype=object))
        return self._codes[name]

    def per_row(self, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``fn`` of field ``name``'s distinct values, spread back to every row."""
        codes, uniques = self.codes(name)
        return fn(uniques)[codes]

    def at(self, name: str, pos: int) -> str:
        """Field ``name`` of row ``pos`` (for messages), a number in one canonical form: the CSV parser
        reads a column of numbers as numbers, so without it the text would depend on the other lines."""
        codes, uniques = self.codes(name)
        return _message_text(str(uniques[codes[pos]]))


def _message_text(text: str) -> str:
    """``text``, or for a number its canonical form (``0``, ``0.0`` and ``00`` are all ``0``)."""
    try:
        value = float(text)
    except ValueError:
        return text
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def on_uniques(values: Column, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` applied to the distinct values of ``values`` only, spread back to every row."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return fn(np.asarray(uniques, dtype=object))[np.asarray(codes)]


def _map(fn: Callable[[str], object], dtype: type = object) -> Callable[[np.ndarray], np.ndarray]:
    def apply(uniques: np.ndarray) -> np.ndarray:
        return np.fromiter((fn(u) for u in uniques), dtype=dtype, count=len(uniques))

    return apply


def uri_path(uri: str) -> str:
    """The path of a URI (``/a/b`` of ``/a/b?x=1#f`` or ``https://host:443/a/b?x=1``); ``""`` when none."""
    text = str(uri)
    if "://" in text[:12]:
        slash = text.find("/", text.find("://") + 3)
        text = text[slash:] if slash >= 0 else "/"
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=len(text))
    path = text[:cut]
    return path if path.startswith("/") else ""


def page_value(value: str) -> str:
    """A mapped export's page: the path of a URL or path, else the value itself (a screen name)."""
    text = str(value).strip()
    return uri_path(text) if text.startswith("/") or "://" in text[:12] else ("" if text == "-" else text)


def _page_function(settings: SourceSettings) -> Callable[[str], str]:
    rules = [(re.compile(p), r) for p, r in settings.page_rules]

    def page(path: str) -> str:
        if settings.collapse_ids:
            path = _ID_SEGMENT.sub(":id", path)
        for pattern, replacement in rules:
            path = pattern.sub(replacement, path)
        return path

    return page


def _static_function(settings: SourceSettings) -> Callable[[str], bool]:
    extensions = settings.static_extensions

    def is_static(path: str) -> bool:
        return path.lower().endswith(extensions)

    return is_static


def _bot_function(settings: SourceSettings) -> Callable[[str], bool]:
    tokens = [t.lower() for t in settings.good_bots]

    def is_good_bot(agent: str) -> bool:
        text = urllib.parse.unquote(str(agent)).lower()
        return any(t in text for t in tokens)

    return is_good_bot


def _status(value: str) -> int:
    text = str(value).strip()  # ASCII digits only: int() fails on "¹²³" and reads "٢٠٠" as 200
    return int(text) if text.isascii() and text.isdigit() and len(text) == 3 else -1


@functools.lru_cache(maxsize=16)
def hash_key(salt: str) -> str:
    """The 16-character key of pandas' SipHash-2-4 derived from ``salt`` (printable ASCII, ~105 bits)."""
    digest = hashlib.blake2b(salt.encode("utf-8"), digest_size=16, person=b"clickstream-user").digest()
    return "".join(chr(32 + b % 95) for b in digest)


def pseudonyms(values: np.ndarray, salt: str, prefix: str) -> np.ndarray:
    """Keyed hashes of strings: ``prefix`` + 16 hex digits of SipHash-2-4 keyed by the salt, object array of
    shape (n,). The same value and salt always give the same pseudonym; without the salt it cannot be
    recomputed (but anyone who has the salt can test a guess)."""
    if not len(values):
        return np.empty(0, dtype=object)
    hashed = pd.util.hash_array(np.asarray(values, dtype=object), hash_key=hash_key(salt), categorize=False)
    # 16 hex digits without a per-value Python call: the 8 bytes of each hash, big-endian, as hex pairs
    digits = _HEX[hashed.astype(">u8").view(np.uint8).reshape(-1, 8)]
    return np.char.add(prefix, digits.view("U16").reshape(-1)).astype(object)


def cookie_value(header: str, name: str) -> str:
    """The value of cookie ``name`` in a ``Cookie`` header as CloudFront logs it (maybe URL-encoded); ``""``."""
    text = str(header)
    if "%" in text:
        text = urllib.parse.unquote(text)
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return ""


def _users(req: Requests, rows: np.ndarray, settings: SourceSettings) -> np.ndarray:
    """The user of each of ``rows``: mapped field, hashed cookie, or hashed IP + user agent."""
    salt = settings.salt or ""
    n = len(rows)
    users = np.full(n, "", dtype=object)
    if req.user is not None:
        codes, uniques = req.codes("user")
        given = pseudonyms(uniques, salt, "u") if settings.hash_users else _clean(uniques)
        users = given[codes[rows]]
    if req.cookie is not None and settings.user_cookie:
        name = settings.user_cookie
        codes, uniques = req.codes("cookie")
        values = np.fromiter((cookie_value(c, name) for c in uniques), dtype=object, count=len(uniques))
        hashed = pseudonyms(values, salt, "c")
        has_u = values != ""
        row_codes = codes[rows]
        has = has_u[row_codes]
        users[has] = hashed[row_codes[has]]
    missing = users == ""
    if missing.any() and req.ip is not None:
        ip_codes_all, ip_u = req.codes("ip")
        ip_codes = ip_codes_all[rows][missing]
        if req.user_agent is not None:
            ua_codes_all, ua_u = req.codes("user_agent")
            ua_codes = ua_codes_all[rows][missing]
        else:
            ua_codes, ua_u = np.zeros(len(ip_codes), np.int64), np.array([""], dtype=object)
        pairs, inverse = np.unique(ip_codes.astype(np.int64) * (len(ua_u) + 1) + ua_codes, return_inverse=True)
        width = len(ua_u) + 1
        ips = np.asarray(ip_u, dtype=object)[pairs // width]
        agents = np.asarray(ua_u, dtype=object)[pairs % width]
        texts = ips + "\x1f" + agents
        users[missing] = pseudonyms(texts, salt, "h")[inverse]
    return users


def _clean(values: np.ndarray) -> np.ndarray:
    out = np.fromiter((str(v).strip() for v in values), dtype=object, count=len(values))
    out[out == "-"] = ""
    return out


def _in_ranges(codes: np.ndarray, ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
    ok = np.zeros(len(codes), dtype=bool)
    for lo, hi in ranges:
        ok |= (codes >= lo) & (codes <= hi)
    return ok


def to_clicks(
    req: Requests,
    settings: SourceSettings,
    *,
    source: str,
    skip_bad: bool,
    bad: BadLines,
    filtered: Filtered | None = None,
    with_lines: bool = False,
) -> pd.DataFrame:
    """The clicks of ``req`` as a frame ``ts`` (int64 ns UTC), ``user``, ``page`` (what
    :func:`~clickstream_anomaly.clicks_csv.iter_click_chunks` yields; with ``with_lines`` also ``line``,
    each click's 1-based line); bad rows raise or go to ``bad``."""
    n = len(req.lines)
    keep = np.ones(n, dtype=bool) if req.keep is None else req.keep.copy()
    reasons: dict[int, str] = dict(req.errors)
    bad_mask = np.zeros(n, dtype=bool)
    if reasons:
        bad_mask[list(reasons)] = True
    bad_ts = (req.ts == NAT) & keep & ~bad_mask
    codes = req.per_row("status", _map(_status, np.int64)) if req.status is not None else None
    bad_status = (codes < 0) & keep & ~bad_mask & ~bad_ts if codes is not None else np.zeros(n, dtype=bool)
    paths = req.per_row("uri", _map(page_value if req.any_page else uri_path))
    counted = keep & ~bad_mask & ~bad_ts & ~bad_status
    filtered = filtered if filtered is not None else Filtered()
    if codes is not None:
        not_status = counted & ~_in_ranges(codes, settings.status_ranges)
        filtered.add("status", int(not_status.sum()))
        counted &= ~not_status
    bad_path = counted & (paths == "")
    counted &= ~bad_path
    for pos in np.flatnonzero(bad_ts).tolist():
        reasons[pos] = f"bad timestamp: {req.at('ts_text', pos)!r}"
    for pos in np.flatnonzero(bad_status).tolist():
        reasons[pos] = f"bad status: {req.at('status', pos)!r}"
    for pos in np.flatnonzero(bad_path).tolist():
        reasons[pos] = f"no URI path: {req.at('uri', pos)!r}"
    if reasons:
        for pos in sorted(reasons):
            if not skip_bad:
                raise RecordError(reasons[pos], source=source, line=int(req.lines[pos]), raw=req.raw(pos))
            bad.add(source, int(req.lines[pos]), reasons[pos], req.raw(pos))
    counted = _filters(req, paths, counted, settings, filtered)
    rows = np.flatnonzero(counted)
    pages = on_uniques(paths[rows], _map(_page_function(settings)))
    out = pd.DataFrame(
        {
            "ts": req.ts[rows].astype(np.int64),
            "user": pd.Series(_users(req, rows, settings), dtype=object),
            "page": pd.Series(pages, dtype=object),
        }
    )
    if with_lines:
        out["line"] = np.asarray(req.lines, dtype=np.int64)[rows]
    return out


def _filters(
    req: Requests, paths: np.ndarray, counted: np.ndarray, settings: SourceSettings, filtered: Filtered
) -> np.ndarray:
    """``counted`` without the requests whose method, path or user agent says they are not clicks."""
    if req.method is not None and settings.methods:
        allowed = set(settings.methods)
        wrong = counted & req.per_row("method", _map(lambda m: str(m).upper() not in allowed, bool))
        filtered.add("method", int(wrong.sum()))
        counted = counted & ~wrong
    if settings.exclude_static:
        static = counted & on_uniques(paths, _map(_static_function(settings), bool))
        filtered.add("static", int(static.sum()))
        counted = counted & ~static
    if settings.exclude_good_bots and req.user_agent is not None and settings.good_bots:
        bots = counted & req.per_row("user_agent", _map(_bot_function(settings), bool))
        filtered.add("bot", int(bots.sum()))
        counted = counted & ~bots
    return counted


def parse_times(texts: Column, parse: Callable[[pd.Index], pd.DatetimeIndex]) -> np.ndarray:
    """int64 ns UTC of each text via ``parse`` on the distinct texts (NaT -> :data:`NAT`)."""

    def run(uniques: np.ndarray) -> np.ndarray:
        stamps = pd.DatetimeIndex(parse(pd.Index(uniques.astype(str), dtype=object)))
        return datetimes_to_ns(stamps)

    return on_uniques(texts, run)


_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
#: The window of plausible click times (1990 to 2200): outside it a parsed timestamp is a bad one.
MIN_NS, MAX_NS = 631_152_000 * 10**9, 7_258_118_400 * 10**9


def datetimes_to_ns(stamps: pd.DatetimeIndex) -> np.ndarray:
    """int64 ns since the epoch of each stamp whatever its unit; :data:`NAT` for NaT and for times outside
    1990-2200 (hostile input must not overflow)."""
    ticks = np.asarray(stamps.asi8, dtype=np.int64)
    missing = np.asarray(stamps.isna())
    per = _PER_UNIT[str(stamps.unit)]
    lo, hi = MIN_NS // per, MAX_NS // per
    ok = ~missing & (ticks >= lo) & (ticks <= hi)
    return np.where(ok, ticks * per, NAT)


def epoch_to_ns(values: np.ndarray, unit: str) -> np.ndarray:
    """int64 ns of epoch numbers in ``unit`` (``s``, ``ms``, ``us``, ``ns``; text or numbers, fractions
    allowed); :data:`NAT` where not a number or outside 1990-2200."""
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    per = _PER_UNIT[unit]
    with np.errstate(invalid="ignore", over="ignore"):
        # in whole microseconds first (exact in float64 up to 2^53 us, year 2255): 1598907106.384 s lands on
        # the millisecond, where seconds x 1e9 in float would not
        micros = np.round(numbers * (per / 1_000))
        ok = np.isfinite(micros) & (micros >= MIN_NS // 1_000) & (micros <= MAX_NS // 1_000)
        out = np.where(ok, micros, 0).astype(np.int64) * 1_000
    out[~ok] = NAT
    return out
