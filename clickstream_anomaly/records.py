"""The three record types that every part of the project exchanges: click, window, detection.

This module is the one place where their fields, CSV headers and JSON shapes are defined.

* **click** ``timestamp, user, page``: one event. CSV with that header; a JSON object with those keys on
  Kinesis. Timestamps are ISO 8601; naive ones are taken as UTC, aware ones are converted to UTC.
* **clicks-stream record**: the data of one Kinesis record on the clicks stream is one click's JSON, or
  several (an *aggregated* record) separated by ``\n``, in event order (:func:`join_click_payloads`,
  :func:`decode_click_record`). Compact JSON never holds a raw newline, so the split is exact, and the
  data lake (Firehose appends ``\n`` per record) stays JSON Lines either way.
* **window** ``window_start, urls, users, clicks, residual``: the features of one fixed-length window
  (10 minutes by default). ``residual = clicks - users * R`` with ``R`` the trailing day's clicks per user
  (see :mod:`clickstream_anomaly.features`). On the features stream a window's JSON may also carry
  ``page_clicks``, an object of page -> clicks (its :data:`PAGES_PER_WINDOW` most clicked pages, ties by
  page name: :func:`top_pages`), which the per-page detector reads; CSV windows files do not.
* **detection**: a window plus ``detector, score, is_anomaly, threshold`` and optional explanation
  (``attribution``, ``direction``, ``strength`` per feature column) or forecast band (``p01, p50, p99``);
  its JSON also carries ``extra``, a detector's own details, when there are any (the per-page detector's
  ``page`` and ``page_clicks``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

CLICK_COLUMNS: tuple[str, ...] = ("timestamp", "user", "page")
FEATURE_COLUMNS: tuple[str, ...] = ("urls", "users", "clicks", "residual")
WINDOW_COLUMNS: tuple[str, ...] = ("window_start", *FEATURE_COLUMNS)
LABEL_COLUMNS: tuple[str, ...] = ("window_start", "is_anomaly", "incident")
DETECTION_COLUMNS: tuple[str, ...] = (
    *WINDOW_COLUMNS,
    "detector",
    "score",
    "threshold",
    "is_anomaly",
    "explanation",
    "p01",
    "p50",
    "p99",
    "warmup",
)
DIRECTIONS = ("HIGH", "LOW")
PAGES_PER_WINDOW = 200  # pages a window keeps in its page counts: its most clicked ones
PAGE_CLICKS = "page_clicks"  # the window JSON's optional field of clicks per page


class DetectorName(StrEnum):
    """Detector names: the one list for the local twins, the Lambdas, the SageMaker callers and the CDK alarms.

    Members are strings (``DetectorName.DEEPAR == "deepar"``), so records and JSON carry plain text.
    """

    BASELINE = "baseline"  # time-aware baseline: each window against what is normal at its time of day / week
    PAGES = "baseline-pages"  # the time-aware baseline per popular page: a page that stops getting clicks
    RCF_STREAMING = "rcf-streaming"  # KDA RANDOM_CUT_FOREST_WITH_EXPLANATION semantics (local twin, detector Lambda)
    RCF_CONTEXT = "rcf-context"  # the streaming RCF given time context: the local hour (or shingles)
    RCF_DEVIATION = "rcf-deviation"  # the streaming RCF on the time-aware baseline's deviations
    RCF_BATCH = "rcf-batch"  # SageMaker Random Cut Forest (local twin, endpoint, scorer Lambda)
    DEEPAR = "deepar"  # SageMaker DeepAR forecast band (local twin, endpoint, scorer Lambda)
    KDA_SQL = "kda-sql"  # the Kinesis Data Analytics SQL application itself (legacy engine)


BASELINE = DetectorName.BASELINE
PAGES = DetectorName.PAGES
RCF_STREAMING = DetectorName.RCF_STREAMING
RCF_CONTEXT = DetectorName.RCF_CONTEXT
RCF_DEVIATION = DetectorName.RCF_DEVIATION
RCF_BATCH = DetectorName.RCF_BATCH
DEEPAR = DetectorName.DEEPAR
KDA_SQL = DetectorName.KDA_SQL


class RecordError(ValueError):
    """A record that cannot be parsed. ``source`` and ``line`` locate it when known (1-based lines)."""

    def __init__(
        self, reason: str, *, source: str | None = None, line: int | None = None, raw: str | None = None
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.raw = raw
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{reason}")


def parse_timestamp(value: Any) -> datetime:
    """Parse an ISO 8601 timestamp into an aware UTC ``datetime`` (naive input is taken as UTC)."""
    if isinstance(value, datetime):
        ts = value
    else:
        text = str(value).strip() if value is not None else ""
        if not text:
            raise RecordError("empty timestamp")
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.fromisoformat(text)
        except ValueError as exc:
            raise RecordError(f"bad timestamp {value!r}: not ISO 8601") from exc
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def format_timestamp(ts: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix and no sub-second part when it is zero."""
    ts = parse_timestamp(ts)
    text = ts.replace(tzinfo=None).isoformat()
    return text + "Z"


@dataclass(frozen=True, slots=True)
class Click:
    """One click event. ``timestamp`` is aware UTC; ``user`` and ``page`` are non-empty strings."""

    timestamp: datetime
    user: str
    page: str

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Click:
        """Build from a dict with keys ``timestamp, user, page``; raises :class:`RecordError`."""
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {type(data).__name__}")
        missing = [k for k in CLICK_COLUMNS if k not in data or data[k] is None]
        if missing:
            raise RecordError(f"missing field(s): {', '.join(missing)}")
        user = str(data["user"]).strip()
        page = str(data["page"]).strip()
        if not user:
            raise RecordError("empty user")
        if not page:
            raise RecordError("empty page")
        if not unicode_ok(user, page):
            raise RecordError("user or page is not valid Unicode (a lone surrogate)")
        return cls(parse_timestamp(data["timestamp"]), user, page)

    @classmethod
    def from_json(cls, text: str | bytes) -> Click:
        """Parse the JSON object used on the clicks stream."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RecordError(f"not JSON: {exc}") from exc
        return cls.from_mapping(data)

    def to_dict(self) -> dict[str, str]:
        return {"timestamp": format_timestamp(self.timestamp), "user": self.user, "page": self.page}

    def to_json(self) -> str:
        """The JSON object written to the clicks stream (compact, keys in CSV order)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))


def unicode_ok(*texts: str) -> bool:
    """Whether every text can be written as UTF-8: JSON's ``\\ud800`` escapes (and their surrogate-pass
    bytes) decode to lone surrogates, which no state, stream record or report can hold."""
    if all(text.isascii() for text in texts):
        return True
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


CLICK_SEPARATOR = b"\n"  # between the click JSON objects of an aggregated clicks-stream record


def join_click_payloads(payloads: Iterable[bytes]) -> bytes:
    """The data of one clicks-stream record holding these click JSON payloads (each from
    :meth:`Click.to_json`, or already joined), in order; a single payload is returned as it is."""
    return CLICK_SEPARATOR.join(payloads)


def decode_click_record(data: bytes | str) -> tuple[list[Click], list[RecordError]]:
    """The clicks of one clicks-stream record (single or aggregated) and the errors of its bad clicks.

    A record that is one JSON value (whatever its whitespace) is a single click; otherwise each non-blank
    line is a click. An error's message is the reason alone for a single click (as before aggregation
    existed) and ``click N of M: reason`` for a click inside an aggregated record; ``error.line`` is N.
    A record with no click at all is an error.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)  # as json.loads(bytes)
    try:
        return [Click.from_mapping(json.loads(raw))], []
    except RecordError as exc:
        return [], [exc]
    except (ValueError, UnicodeDecodeError) as exc:
        single_error = exc
    lines = [line for line in raw.split(CLICK_SEPARATOR) if line.strip()]
    if len(lines) <= 1:
        reason = f"not JSON: {single_error}" if lines else "empty record: no click"
        return [], [RecordError(reason, raw=raw[:200].decode("utf-8", "replace"))]
    clicks: list[Click] = []
    errors: list[RecordError] = []
    for number, line in enumerate(lines, 1):
        try:
            clicks.append(Click.from_json(line))
        except RecordError as exc:
            error = RecordError(
                f"click {number} of {len(lines)}: {exc.reason}", raw=line[:200].decode("utf-8", "replace")
            )
            error.line = number
            errors.append(error)
    return clicks, errors


@dataclass(frozen=True, slots=True)
class Window:
    """Features of one window. ``window_start`` is aware UTC; ``urls, users, clicks`` are counts and
    ``residual`` a float (clicks not explained by the users)."""

    window_start: datetime
    urls: int
    users: int
    clicks: int
    residual: float
    page_clicks: dict[str, int] | None = field(default=None, compare=False, hash=False)

    @property
    def features(self) -> tuple[int, int, int, float]:
        """The feature vector in :data:`FEATURE_COLUMNS` order."""
        return (self.urls, self.users, self.clicks, self.residual)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Window:
        missing = [k for k in WINDOW_COLUMNS if k not in data]
        if missing:
            raise RecordError(f"missing field(s): {', '.join(missing)}")
        try:
            values = {k: float(data[k]) for k in FEATURE_COLUMNS}
        except (TypeError, ValueError) as exc:
            raise RecordError(f"non-numeric feature: {exc}") from exc
        bad = [f"{k}={v}" for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise RecordError(f"non-finite feature(s): {', '.join(bad)}")
        counts: dict[str, Any] = {k: int(values[k]) for k in ("urls", "users", "clicks")}
        pages = _page_clicks(data.get(PAGE_CLICKS))
        return cls(parse_timestamp(data["window_start"]), **counts, residual=values["residual"], page_clicks=pages)

    @classmethod
    def from_json(cls, text: str | bytes) -> Window:
        try:
            return cls.from_mapping(json.loads(text))
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, RecordError):
                raise
            raise RecordError(f"not JSON: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_start": format_timestamp(self.window_start),
            "urls": self.urls,
            "users": self.users,
            "clicks": self.clicks,
            "residual": self.residual,
        }

    def to_stream_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with ``page_clicks`` when known: the features stream's object."""
        row = self.to_dict()
        if self.page_clicks is not None:
            row[PAGE_CLICKS] = self.page_clicks
        return row

    def to_json(self) -> str:
        """The JSON object written to the features stream (:meth:`to_stream_dict`)."""
        return json.dumps(self.to_stream_dict(), separators=(",", ":"))


def top_pages(counts: dict[str, int], n: int = PAGES_PER_WINDOW) -> dict[str, int]:
    """The ``n`` most clicked pages of ``counts`` (page -> clicks), ties by page name, without zeros; the
    one rule of every engine's ``page_clicks``."""
    ranked = sorted(((-c, p) for p, c in counts.items() if c > 0))[:n]
    return {p: -c for c, p in ranked}


def _page_clicks(value: Any) -> dict[str, int] | None:
    """``page_clicks`` of a window mapping, checked: an object of page -> non-negative integer clicks."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecordError(f"{PAGE_CLICKS} must be an object of page -> clicks, got {type(value).__name__}")
    out: dict[str, int] = {}
    for page, clicks in value.items():
        if isinstance(clicks, bool) or not isinstance(clicks, int | float) or not float(clicks).is_integer():
            raise RecordError(f"{PAGE_CLICKS}[{page!r}] must be a whole number, got {clicks!r}")
        if clicks < 0:
            raise RecordError(f"{PAGE_CLICKS}[{page!r}] must not be negative, got {clicks}")
        out[str(page)] = int(clicks)
    return out


@dataclass(slots=True)
class Detection:
    """A detector's verdict on one window.

    ``score`` is higher-is-more-anomalous for RCF detectors; for the forecast band it is the distance
    outside the band in band widths (0 inside). ``attribution``/``direction``/``strength`` map feature
    column -> value (RCF with explanation); ``p01``/``p50``/``p99`` are the forecast band (DeepAR).
    """

    window: Window
    detector: str
    score: float
    threshold: float
    is_anomaly: bool
    attribution: dict[str, float] | None = None
    direction: dict[str, str] | None = None
    strength: dict[str, float] | None = None
    p01: float | None = None
    p50: float | None = None
    p99: float | None = None
    expected: dict[str, float] | None = None
    low: dict[str, float] | None = None
    high: dict[str, float] | None = None
    warmup: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_band(
        cls, window: Window, observed: float, p01: float, p50: float, p99: float, detector: str = DEEPAR, **extra: Any
    ) -> Detection:
        """A forecast-band verdict (the one definition every DeepAR caller uses): anomalous when ``observed``
        is outside ``[p01, p99]``; ``score`` = distance outside the band / band width (0 inside);
        ``threshold`` = 0."""
        return cls(
            window=window,
            detector=detector,
            score=band_score(observed, p01, p99),
            threshold=0.0,
            is_anomaly=observed < float(p01) or observed > float(p99),
            p01=float(p01),
            p50=float(p50),
            p99=float(p99),
            extra=dict(extra),
        )

    def explanation(self) -> dict[str, dict[str, Any]] | None:
        """Per-column explanation as KDA printed it: ``{col: {ATTRIBUTION_SCORE, STRENGTH, DIRECTION}}``."""
        if self.attribution is None:
            return None
        out: dict[str, dict[str, Any]] = {}
        for col, value in self.attribution.items():
            entry: dict[str, Any] = {"ATTRIBUTION_SCORE": float(value)}
            if self.direction is not None:
                entry["DIRECTION"] = self.direction.get(col, "LOW")
            if self.strength is not None:
                entry["STRENGTH"] = float(self.strength.get(col, 0.0))
            for key, values in (("EXPECTED", self.expected), ("LOW", self.low), ("HIGH", self.high)):
                if values is not None and col in values:
                    entry[key] = float(values[col])
            out[col] = entry
        return out

    def to_row(self) -> dict[str, Any]:
        """Flat row in :data:`DETECTION_COLUMNS` order (explanation as compact JSON, empty when absent)."""
        expl = self.explanation()
        row = self.window.to_dict()
        row.update(
            {
                "detector": self.detector,
                "score": float(self.score),
                "threshold": float(self.threshold),
                "is_anomaly": bool(self.is_anomaly),
                "explanation": json.dumps(expl, separators=(",", ":")) if expl is not None else "",
                "p01": _opt(self.p01),
                "p50": _opt(self.p50),
                "p99": _opt(self.p99),
                "warmup": bool(self.warmup),
            }
        )
        return row

    def to_json(self) -> str:
        row = self.to_row()
        row["explanation"] = self.explanation()
        for key in ("p01", "p50", "p99"):
            if row[key] == "":
                row[key] = None
        if self.extra:
            row["extra"] = self.extra  # a detector's own details (the per-page detector's page and clicks)
        return json.dumps(row, separators=(",", ":"))

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Detection:
        """Inverse of :meth:`to_row` / :meth:`to_json` (explanation as JSON text or dict)."""
        window = Window.from_mapping(data)
        extra = data.get("extra")
        if extra is not None and not isinstance(extra, dict):
            raise RecordError(f"extra must be an object, got {type(extra).__name__}")
        attribution, direction, strength = explanation_fields(data.get("explanation"))
        expected, low, high = expectation_fields(data.get("explanation"))
        is_anom, warmup = (_bool(data[k]) if k in data else False for k in ("is_anomaly", "warmup"))
        return cls(
            window=window,
            detector=str(data["detector"]),
            score=float(data["score"]),
            threshold=float(data["threshold"]),
            is_anomaly=is_anom,
            attribution=attribution,
            direction=direction,
            strength=strength,
            p01=_float_or_none(data.get("p01")),
            p50=_float_or_none(data.get("p50")),
            p99=_float_or_none(data.get("p99")),
            expected=expected,
            low=low,
            high=high,
            warmup=warmup,
            extra=dict(extra or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_detections_csv(detections: Iterable[Detection], fh: TextIO) -> int:
    """The detections CSV (header :data:`DETECTION_COLUMNS`, one row per :meth:`Detection.to_row`); returns
    the number of rows. The one writer of this format (``detect``, ``sagemaker invoke``)."""
    writer = csv.DictWriter(fh, fieldnames=list(DETECTION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    n = 0
    for det in detections:
        writer.writerow(det.to_row())
        n += 1
    return n


def band_score(observed: float, p01: float, p99: float) -> float:
    """Distance of ``observed`` outside ``[p01, p99]`` in band widths (0 inside; higher is more anomalous)."""
    width = max(float(p99) - float(p01), 1e-12)
    return max(float(p01) - observed, observed - float(p99), 0.0) / width


def explanation_fields(
    expl: str | dict[str, Any] | None,
) -> tuple[dict[str, float] | None, dict[str, str] | None, dict[str, float] | None]:
    """KDA's ``ANOMALY_EXPLANATION`` (JSON text or dict; numbers possibly as strings) ->
    ``(attribution, direction, strength)`` dicts keyed by column (``None`` when absent)."""
    if isinstance(expl, str | bytes):
        expl = json.loads(expl) if expl.strip() else None
    if not expl:
        return None, None, None
    try:
        attribution = {c: float(v["ATTRIBUTION_SCORE"]) for c, v in expl.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"bad explanation: {exc}") from exc
    direction = strength = None
    if any("DIRECTION" in v for v in expl.values()):
        direction = {c: str(v.get("DIRECTION", "LOW")) for c, v in expl.items()}
    if any("STRENGTH" in v for v in expl.values()):
        strength = {c: float(v.get("STRENGTH", 0.0)) for c, v in expl.items()}
    return attribution, direction, strength


def expectation_fields(
    expl: str | dict[str, Any] | None,
) -> tuple[dict[str, float] | None, dict[str, float] | None, dict[str, float] | None]:
    """The expected value and band per column (``EXPECTED``, ``LOW``, ``HIGH``) of an explanation, as
    ``(expected, low, high)`` dicts (``None`` when the detector gives none, e.g. the RCFs)."""
    if isinstance(expl, str | bytes):
        expl = json.loads(expl) if expl.strip() else None
    if not expl:
        return None, None, None
    out: list[dict[str, float] | None] = []
    for key in ("EXPECTED", "LOW", "HIGH"):
        values = {c: float(v[key]) for c, v in expl.items() if isinstance(v, dict) and key in v}
        out.append(values or None)
    return out[0], out[1], out[2]


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _opt(value: float | None) -> float | str:
    return "" if value is None else float(value)


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    out = float(value)
    return None if math.isnan(out) else out
