"""The settings of a click source: who the user is, what the page is, which requests count as clicks.

One frozen, validated object (:class:`SourceSettings`) that every reader takes. It is built from keyword
arguments or from a JSON object (:meth:`SourceSettings.from_mapping`, the CLI's ``--source-config``); an
invalid value raises a ``ValueError`` that names the setting and what it accepts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

#: The real-time log fields the project asks CloudFront for (in this order) when the settings name none:
#: when, who (the viewer's IP and user agent, or a session cookie), what (URI, method) and the outcome.
DEFAULT_REALTIME_FIELDS: tuple[str, ...] = (
    "timestamp",
    "c-ip",
    "sc-status",
    "cs-method",
    "cs-uri-stem",
    "cs-user-agent",
    "cs-cookie",
)
#: Every field a CloudFront real-time log configuration may hold (the CloudFront Developer Guide's list).
REALTIME_FIELDS: frozenset[str] = frozenset(
    [
        "timestamp",
        "c-ip",
        "time-to-first-byte",
        "sc-status",
        "sc-bytes",
        "cs-method",
        "cs-protocol",
        "cs-host",
        "cs-uri-stem",
        "cs-bytes",
        "x-edge-location",
        "x-edge-request-id",
        "x-host-header",
        "time-taken",
        "cs-protocol-version",
        "c-ip-version",
        "cs-user-agent",
        "cs-referer",
        "cs-cookie",
        "cs-uri-query",
        "x-edge-response-result-type",
        "x-forwarded-for",
        "ssl-protocol",
        "ssl-cipher",
        "x-edge-result-type",
        "fle-encrypted-fields",
        "fle-status",
        "sc-content-type",
        "sc-content-len",
        "sc-range-start",
        "sc-range-end",
        "c-port",
        "x-edge-detailed-result-type",
        "c-country",
        "cs-accept-encoding",
        "cs-accept",
        "cache-behavior-path-pattern",
        "cs-headers",
        "cs-header-names",
        "cs-headers-count",
        "origin-fbl",
        "origin-lbl",
        "asn",
        "timestamp(ms)",
    ]
)
#: Paths ending in these are static assets, not page views (left out unless ``exclude_static=False``).
DEFAULT_STATIC_EXTENSIONS: tuple[str, ...] = (
    ".js",
    ".mjs",
    ".css",
    ".map",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".ico",
    ".webp",
    ".avif",
    ".bmp",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".eot",
    ".mp4",
    ".webm",
    ".mp3",
)
#: User-agent tokens of crawlers that declare themselves (search engines, link previews): left out unless
#: ``exclude_good_bots=False``. Any other bot stays in: a flood of unknown bots is an incident to report.
DEFAULT_GOOD_BOTS: tuple[str, ...] = (
    "Googlebot",
    "Google-InspectionTool",
    "AdsBot-Google",
    "Mediapartners-Google",
    "bingbot",
    "Applebot",
    "DuckDuckBot",
    "YandexBot",
    "Baiduspider",
    "Slurp",
    "facebookexternalhit",
    "Twitterbot",
    "LinkedInBot",
    "Slackbot",
    "Pinterestbot",
)
#: Roles a JSON Lines or CSV export's columns can play (``field_map`` keys).
FIELD_ROLES: tuple[str, ...] = ("timestamp", "user", "page", "ip", "user_agent", "status", "method")
DEFAULT_FIELD_MAP: Mapping[str, str] = {"timestamp": "event_time", "user": "client_id", "page": "page_location"}
TIMESTAMP_UNITS: tuple[str, ...] = ("iso", "s", "ms", "us", "ns")
SALT_ENV = "CLICKSTREAM_USER_SALT"
_STATUS_PART = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")


def parse_statuses(text: str) -> tuple[tuple[int, int], ...]:
    """``"200-299,304"`` -> ``((200, 299), (304, 304))``; a ``ValueError`` naming the bad part."""
    out = []
    for part in str(text).split(","):
        m = _STATUS_PART.match(part)
        if not m:
            raise ValueError(f"statuses: {part.strip()!r} is not a status code (200) or a range (200-299)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError(f"statuses: range {part.strip()!r} ends before it starts")
        out.append((lo, hi))
    return tuple(out)


@dataclass(frozen=True)
class SourceSettings:
    """How a source's requests become clicks.

    Parameters
    ----------
    realtime_fields : tuple of str
        The CloudFront real-time log configuration's fields, in its order (``cloudfront-realtime``).
        ``timestamp`` and ``cs-uri-stem`` are required.
    sampling_rate : int, default 100
        The share of requests the source logs, percent (1–100; a CloudFront real-time log configuration's
        sampling rate). The windows' ``clicks`` are scaled by 100 / rate
        (:func:`clickstream_anomaly.features.scale_clicks`); distinct users and pages cannot be scaled
        (see the "Connect your traffic" page).
    user_cookie : str or None
        Name of the cookie (in ``cs-cookie`` / ``cs(Cookie)``) that identifies a visitor. Its value is
        hashed with ``salt``. Without it, or when a request has no such cookie, the user is a salted hash
        of client IP + user agent.
    salt : str or None
        Key of the user hash. None: the ``CLICKSTREAM_USER_SALT`` environment variable, else a random salt
        for this process (user ids then differ between runs).
    statuses : str, default "200-299,304"
        HTTP status codes that count as clicks (codes and ranges, comma-separated).
    methods : tuple of str, default ("GET",)
        HTTP methods that count as clicks (empty: all).
    exclude_static : bool, default True
        Leave out paths ending in one of ``static_extensions``.
    exclude_good_bots : bool, default True
        Leave out requests whose user agent contains one of ``good_bots`` (case-insensitive).
    page_rules : tuple of (pattern, replacement)
        Regular-expression rewrites of the page path, applied in order (``("^/product/\\d+", "/product/:id")``).
    collapse_ids : bool, default False
        Replace path segments that are numbers, UUIDs or long hex strings by ``:id``.
    field_map : mapping of str to str
        For ``jsonl`` and ``csv``: the column playing each role among ``timestamp, user, page`` (required),
        ``ip, user_agent, status, method`` (optional).
    timestamp_unit : str, default "iso"
        For ``jsonl`` and ``csv``: ``iso`` (ISO 8601 text) or epoch ``s``, ``ms``, ``us``, ``ns``.
    hash_users : bool, default False
        For ``jsonl`` and ``csv``: hash the user column too (cookie values and IPs are always hashed).
    """

    realtime_fields: tuple[str, ...] = DEFAULT_REALTIME_FIELDS
    sampling_rate: int = 100
    user_cookie: str | None = None
    salt: str | None = None
    statuses: str = "200-299,304"
    methods: tuple[str, ...] = ("GET",)
    exclude_static: bool = True
    static_extensions: tuple[str, ...] = DEFAULT_STATIC_EXTENSIONS
    exclude_good_bots: bool = True
    good_bots: tuple[str, ...] = DEFAULT_GOOD_BOTS
    page_rules: tuple[tuple[str, str], ...] = ()
    collapse_ids: bool = False
    field_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELD_MAP))
    timestamp_unit: str = "iso"
    hash_users: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the containers once, here
        set_(self, "realtime_fields", tuple(str(f).strip() for f in self.realtime_fields))
        set_(self, "methods", tuple(str(m).strip().upper() for m in self.methods))
        set_(self, "static_extensions", tuple(str(e).lower() for e in self.static_extensions))
        set_(self, "good_bots", tuple(str(b) for b in self.good_bots))
        set_(self, "page_rules", tuple((str(p), str(r)) for p, r in self.page_rules))
        set_(self, "field_map", dict(self.field_map))
        if self.salt is None:
            set_(self, "salt", os.environ.get(SALT_ENV) or secrets.token_hex(16))
        self._validate()

    def _validate(self) -> None:
        unknown = [f for f in self.realtime_fields if f not in REALTIME_FIELDS]
        if unknown:
            raise ValueError(f"realtime_fields: unknown CloudFront real-time log field(s) {', '.join(unknown)}")
        if len(set(self.realtime_fields)) != len(self.realtime_fields):
            raise ValueError("realtime_fields: a field is listed twice")
        if not {"cs-uri-stem"} <= set(self.realtime_fields) or not (
            {"timestamp", "timestamp(ms)"} & set(self.realtime_fields)
        ):
            raise ValueError("realtime_fields: must include timestamp (or timestamp(ms)) and cs-uri-stem")
        if isinstance(self.sampling_rate, bool) or not isinstance(self.sampling_rate, int):
            raise ValueError(f"sampling_rate: must be a whole number of percent 1-100, got {self.sampling_rate!r}")
        if not 1 <= self.sampling_rate <= 100:
            raise ValueError(f"sampling_rate: must be 1-100 (percent), got {self.sampling_rate}")
        if self.user_cookie is not None and not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", self.user_cookie):
            raise ValueError(f"user_cookie: {self.user_cookie!r} is not a cookie name")
        if not self.salt:
            raise ValueError("salt: must not be empty")
        self._validate_mapping()

    def _validate_mapping(self) -> None:
        parse_statuses(self.statuses)
        for pattern, _ in self.page_rules:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"page_rules: bad pattern {pattern!r}: {exc}") from None
        bad_roles = sorted(set(self.field_map) - set(FIELD_ROLES))
        if bad_roles:
            raise ValueError(f"field_map: unknown role(s) {', '.join(bad_roles)} (roles: {', '.join(FIELD_ROLES)})")
        if not {"timestamp", "page"} <= set(self.field_map) or not ({"user", "ip"} & set(self.field_map)):
            raise ValueError("field_map: needs timestamp, page and user (or ip, for a hashed user)")
        if self.timestamp_unit not in TIMESTAMP_UNITS:
            raise ValueError(
                f"timestamp_unit: must be one of {', '.join(TIMESTAMP_UNITS)}, got {self.timestamp_unit!r}"
            )

    @property
    def status_ranges(self) -> tuple[tuple[int, int], ...]:
        """The counted status codes as inclusive ``(low, high)`` ranges."""
        return parse_statuses(self.statuses)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SourceSettings:
        """Settings from a JSON object; unknown keys are an error that names them."""
        if not isinstance(data, Mapping):
            raise ValueError(f"source settings must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown source setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        kwargs: dict[str, Any] = dict(data)
        for key in ("realtime_fields", "methods", "static_extensions", "good_bots"):
            if key in kwargs:
                kwargs[key] = _string_list(key, kwargs[key])
        if "page_rules" in kwargs:
            kwargs["page_rules"] = _rules(kwargs["page_rules"])
        for key in ("exclude_static", "exclude_good_bots", "collapse_ids", "hash_users"):
            if key in kwargs and not isinstance(kwargs[key], bool):
                raise ValueError(f"{key}: must be true or false, got {kwargs[key]!r}")
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> SourceSettings:
        """Settings from a JSON file (the CLI's ``--source-config``)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from None
        try:
            return cls.from_mapping(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _string_list(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key}: must be a list of strings, got {value!r}")
    return tuple(value)


def _rules(value: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for rule in value if isinstance(value, list | tuple) else [value]:
        if isinstance(rule, Mapping) and set(rule) == {"pattern", "replace"}:
            out.append((str(rule["pattern"]), str(rule["replace"])))
        elif isinstance(rule, list | tuple) and len(rule) == 2:
            out.append((str(rule[0]), str(rule[1])))
        else:
            raise ValueError(f"page_rules: each rule is {{'pattern': ..., 'replace': ...}}, got {rule!r}")
    return tuple(out)
