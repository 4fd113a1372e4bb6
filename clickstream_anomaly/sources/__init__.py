"""Click sources: the logs a web team already has, read into the project's clicks.

One reader per format, each yielding the chunks :func:`~clickstream_anomaly.clicks_csv.iter_click_chunks`
yields (frames ``ts`` int64 ns UTC, ``user``, ``page``) and reporting bad lines the same way (file, line,
reason; ``skip_bad`` and :class:`~clickstream_anomaly.clicks_csv.BadLines`):

========================  ===========================================================================
``clicks``                the project's own ``timestamp,user,page`` CSV or JSON Lines
``cloudfront``            CloudFront standard logs (W3C, ``#Version``/``#Fields`` header, tab-separated)
``cloudfront-realtime``   CloudFront real-time log records (the configured fields, tab-separated)
``alb``                   Application Load Balancer access logs (space-separated, quoted fields)
``combined``              nginx / Apache combined (or common) log format
``jsonl``, ``csv``        analytics exports with other column names (``field_map``)
========================  ===========================================================================

Any of them may be gzip. ``auto`` (:func:`detect_format`) tells them apart from the first line where that
is unambiguous, and otherwise says which ``--format`` to give. Who the user is, what the page is and which
requests count are :class:`SourceSettings` (:mod:`.derive` applies them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..clicks_csv import BadLines, iter_click_chunks
from ..records import CLICK_COLUMNS, Click, RecordError
from . import alb, cloudfront, cloudfront_realtime, combined, mapped
from .blocks import BLOCK_BYTES, head_lines
from .derive import Filtered
from .settings import DEFAULT_REALTIME_FIELDS, SourceSettings

AUTO = "auto"
#: Every format name ``--format`` accepts, ``auto`` first.
FORMATS: tuple[str, ...] = (
    AUTO,
    "clicks",
    cloudfront.NAME,
    cloudfront_realtime.NAME,
    alb.NAME,
    combined.NAME,
    mapped.JSONL,
    mapped.CSV,
)

__all__ = [
    "DEFAULT_REALTIME_FIELDS",
    "FORMATS",
    "Filtered",
    "SourceSettings",
    "detect_format",
    "iter_chunks",
    "iter_clicks",
]


def _json_keys(line: bytes) -> set[str] | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    return set(item) if isinstance(item, dict) else None


def detect_format(path: str | Path, settings: SourceSettings | None = None) -> str:
    """The format of ``path`` from its first line (gzip or not); a ``RecordError`` naming the formats when
    the content says none of them (or several)."""
    settings = settings if settings is not None else SourceSettings()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    lines = [line for line in head_lines(path) if line.strip()]
    if not lines:
        raise RecordError("empty file: nothing to tell the format by", source=str(path), line=1)
    first = lines[0]
    if cloudfront.sniff(lines):
        return cloudfront.NAME
    if alb.sniff(lines):
        return alb.NAME
    if combined.sniff(lines):
        return combined.NAME
    if first.lstrip().startswith(b"{"):
        keys = _json_keys(first) or set()
        if set(CLICK_COLUMNS) <= keys:
            return "clicks"
        if set(settings.field_map.values()) <= keys:
            return mapped.JSONL
    elif [c.strip() for c in first.decode("utf-8", "replace").split(",")] == list(CLICK_COLUMNS):
        return "clicks"
    elif cloudfront_realtime.sniff(lines, settings):
        return cloudfront_realtime.NAME
    elif set(settings.field_map.values()) <= set(first.decode("utf-8", "replace").strip().split(",")):
        return mapped.CSV
    raise RecordError(
        f"cannot tell the format from the first line; pass --format (one of {', '.join(FORMATS[1:])}); "
        "cloudfront-realtime is recognised only with its configured fields (realtime_fields), jsonl and csv "
        "only with their field_map",
        source=str(path),
        line=1,
    )


def _clicks_chunks(path: Path, *, chunk_rows: int, skip_bad: bool, bad: BadLines) -> Iterator[pd.DataFrame]:
    """The project's own clicks: CSV through :mod:`clicks_csv`, JSON Lines through the producer's reader."""
    lines = [line for line in head_lines(path, 2) if line.strip()]
    if not (lines and lines[0].lstrip().startswith(b"{")):
        yield from iter_click_chunks(path, chunk_rows=chunk_rows, skip_bad=skip_bad, bad=bad)
        return
    from ..producer import iter_jsonl_clicks  # the JSON Lines click reader (producer.py holds it)

    batch: list[Click] = []
    for click in iter_jsonl_clicks(path, skip_bad=skip_bad, bad=bad):
        batch.append(click)
        if len(batch) >= chunk_rows:
            yield _frame(batch)
            batch = []
    if batch:
        yield _frame(batch)


def _frame(clicks: list[Click]) -> pd.DataFrame:
    stamps = pd.DatetimeIndex([c.timestamp for c in clicks]).as_unit("ns")
    return pd.DataFrame(
        {
            "ts": np.asarray(stamps.asi8, dtype=np.int64),
            "user": pd.Series([c.user for c in clicks], dtype=object),
            "page": pd.Series([c.page for c in clicks], dtype=object),
        }
    )


def iter_chunks(
    path: str | Path,
    fmt: str = AUTO,
    settings: SourceSettings | None = None,
    *,
    chunk_rows: int = 1_000_000,
    skip_bad: bool = False,
    bad: BadLines | None = None,
    filtered: Filtered | None = None,
) -> Iterator[pd.DataFrame]:
    """Validated chunks of clicks of a log in format ``fmt`` (``auto``: :func:`detect_format`), as frames
    ``ts`` (int64 ns since the epoch, UTC), ``user``, ``page``; requests that are not clicks are counted in
    ``filtered``. Raises :class:`RecordError` (file, line, reason) on the first bad line unless ``skip_bad``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    settings = settings if settings is not None else SourceSettings()
    bad = bad if bad is not None else BadLines()
    fmt = detect_format(path, settings) if fmt == AUTO else fmt
    block_bytes = max(1 << 16, min(BLOCK_BYTES, chunk_rows * 256))
    if fmt == "clicks":
        try:
            yield from _clicks_chunks(path, chunk_rows=chunk_rows, skip_bad=skip_bad, bad=bad)
        except UnicodeDecodeError as exc:  # the clicks readers decode strictly; say which file
            raise RecordError(f"not UTF-8 text: {exc}", source=str(path)) from None
    elif fmt == mapped.CSV:
        yield from mapped.csv_chunks(
            path, settings, chunk_rows=chunk_rows, skip_bad=skip_bad, bad=bad, filtered=filtered
        )
    elif fmt in _READERS:
        yield from _READERS[fmt](path, settings, block_bytes=block_bytes, skip_bad=skip_bad, bad=bad, filtered=filtered)
    else:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


_READERS = {
    cloudfront.NAME: cloudfront.chunks,
    cloudfront_realtime.NAME: cloudfront_realtime.chunks,
    alb.NAME: alb.chunks,
    combined.NAME: combined.chunks,
    mapped.JSONL: mapped.jsonl_chunks,
}


def iter_clicks(
    path: str | Path,
    fmt: str = AUTO,
    settings: SourceSettings | None = None,
    *,
    skip_bad: bool = False,
    bad: BadLines | None = None,
    filtered: Filtered | None = None,
) -> Iterator[Click]:
    """The clicks of a log as :class:`~clickstream_anomaly.records.Click` records, in file order."""
    for chunk in iter_chunks(path, fmt, settings, chunk_rows=100_000, skip_bad=skip_bad, bad=bad, filtered=filtered):
        for ts, user, page in zip(chunk["ts"].tolist(), chunk["user"].tolist(), chunk["page"].tolist(), strict=True):
            sec, ns = divmod(int(ts), 1_000_000_000)
            yield Click(datetime.fromtimestamp(sec, UTC).replace(microsecond=ns // 1000), user, page)
