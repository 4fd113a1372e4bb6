"""CloudFront standard logs (W3C extended format): ``#Version`` and ``#Fields`` header lines, then one
tab-separated request per line, usually gzip (``<distribution>.YYYY-MM-DD-HH.<id>.gz`` in S3).

The ``#Fields`` line names the columns (33 in today's logs, fewer in old ones), so a file is read by its own
header; another ``#Fields`` line further down (concatenated files) switches the columns from there on.
Values are URL-encoded by CloudFront (``%20`` for a space); ``cs-uri-stem`` has no query string. The time is
``date`` + ``time`` in UTC, to the second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..clicks_csv import BadLines
from ..records import RecordError
from ._tabular import column, raw_text, require, run_blocks
from .blocks import BLOCK_BYTES, Block, field_counts, split_block
from .derive import NAT, Filtered, Requests, parse_times
from .settings import SourceSettings

NAME = "cloudfront"
#: The fields of today's standard logs, in order (the CloudFront Developer Guide).
FIELDS: tuple[str, ...] = tuple(
    [
        "date",
        "time",
        "x-edge-location",
        "sc-bytes",
        "c-ip",
        "cs-method",
        "cs(Host)",
        "cs-uri-stem",
        "sc-status",
        "cs(Referer)",
        "cs(User-Agent)",
        "cs-uri-query",
        "cs(Cookie)",
        "x-edge-result-type",
        "x-edge-request-id",
        "x-host-header",
        "cs-protocol",
        "cs-bytes",
        "time-taken",
        "x-forwarded-for",
        "ssl-protocol",
        "ssl-cipher",
        "x-edge-response-result-type",
        "cs-protocol-version",
        "fle-status",
        "fle-encrypted-fields",
        "c-port",
        "time-to-first-byte",
        "x-edge-detailed-result-type",
        "sc-content-type",
        "sc-content-len",
        "sc-range-start",
        "sc-range-end",
    ]
)
ROLES = {
    "c-ip": "ip",
    "cs-method": "method",
    "cs-uri-stem": "uri",
    "sc-status": "status",
    "cs(User-Agent)": "user_agent",
    "cs(Cookie)": "cookie",
}


def sniff(lines: list[bytes]) -> bool:
    return bool(lines) and lines[0].startswith((b"#Version:", b"#Fields:"))


def header(line: bytes) -> str:
    return "" if not line.startswith(b"#Fields:") else line[len(b"#Fields:") :].decode("utf-8", "replace")


def chunks(
    path: str | Path,
    settings: SourceSettings,
    *,
    block_bytes: int = BLOCK_BYTES,
    skip_bad: bool = False,
    bad: BadLines,
    filtered: Filtered | None = None,
) -> Iterator[pd.DataFrame]:
    source = str(path)
    state: dict[str, list[str]] = {}

    def requests(block: Block) -> Requests | None:
        return _block_requests(block, state, source)

    yield from run_blocks(
        path, settings, requests, block_bytes=block_bytes, skip_bad=skip_bad, bad=bad, filtered=filtered
    )


def _block_requests(block: Block, state: dict[str, list[str]], source: str) -> Requests | None:
    """The block's data lines as requests; its ``#`` lines update the field list in ``state``."""
    ends = block.line_ends()
    starts = np.concatenate(([0], ends[:-1] + 1))
    data = np.frombuffer(block.data, np.uint8)
    is_header = data[np.minimum(starts, len(data) - 1)] == ord("#")
    parts: list[Requests] = []
    segment_start = 0
    for h in [*np.flatnonzero(is_header).tolist(), len(ends)]:
        if h > segment_start:
            fields = state.get("fields")
            if fields is None:
                raise RecordError("no #Fields header before the first request", source=source, line=block.first_line)
            lo = int(starts[segment_start])
            hi = int(ends[h - 1]) + 1
            sub = Block(block.first_line + segment_start, block.data[lo:hi])
            parts.append(_requests(sub, fields, source))
        if h < len(ends):
            text = header(block.data[int(starts[h]) : int(ends[h])].rstrip(b"\r"))
            if text:
                state["fields"] = text.split()
                require(state["fields"], ("date", "time", "cs-uri-stem"), source, block.first_line + h)
        segment_start = h + 1
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else _concat(parts)


def _requests(block: Block, fields: list[str], source: str) -> Requests:
    ends = block.line_ends()
    index = {name: i for i, name in enumerate(fields)}
    wanted = ["date", "time", *[f for f in ROLES if f in index]]
    usecols = sorted({index[f] for f in wanted})
    frame = split_block(block, sep="\t", usecols=usecols, quoted=False, names=len(fields))
    counts = field_counts(block, b"\t")
    blank = counts == 0
    errors = {
        int(i): f"wrong field count: expected {len(fields)} tab-separated fields, saw {int(counts[i])}"
        for i in np.flatnonzero((counts != len(fields)) & ~blank)
    }
    when = column(frame, index["date"]) + " " + column(frame, index["time"])  # type: ignore[operator]
    ts = parse_times(when, lambda t: pd.to_datetime(t, format="%Y-%m-%d %H:%M:%S", utc=True, errors="coerce"))
    roles = {role: column(frame, index.get(name)) for name, role in ROLES.items()}
    return Requests(
        lines=np.arange(block.first_line, block.first_line + len(ends)),
        ts=np.where(blank, NAT, ts),
        ts_text=when,
        raw=raw_text(block, ends),
        errors=errors,
        keep=~blank,
        **roles,  # type: ignore[arg-type]
    )


def _concat(parts: list[Requests]) -> Requests:
    """One :class:`Requests` of several segments (a block that crosses a ``#Fields`` line)."""
    offsets = np.cumsum([0, *[len(p.lines) for p in parts]])

    def cat(name: str) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in parts]
        if all(a is None for a in arrays):
            return None
        return np.concatenate(
            [
                a if a is not None else np.full(len(p.lines), "", dtype=object)
                for a, p in zip(arrays, parts, strict=True)
            ]
        )

    def raw(pos: int) -> str:
        k = int(np.searchsorted(offsets, pos, side="right")) - 1
        return parts[k].raw(pos - int(offsets[k]))

    errors = {int(offsets[k]) + pos: reason for k, p in enumerate(parts) for pos, reason in p.errors.items()}
    return Requests(
        lines=np.concatenate([p.lines for p in parts]),
        ts=np.concatenate([p.ts for p in parts]),
        ts_text=np.concatenate([p.ts_text for p in parts]),
        uri=cat("uri"),  # type: ignore[arg-type]
        raw=raw,
        status=cat("status"),
        method=cat("method"),
        ip=cat("ip"),
        user_agent=cat("user_agent"),
        cookie=cat("cookie"),
        errors=errors,
        keep=np.concatenate([p.keep if p.keep is not None else np.ones(len(p.lines), bool) for p in parts]),
    )
