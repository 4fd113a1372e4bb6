"""Application Load Balancer access logs: one request per line, space-separated, the request line and user
agent (and later text fields) in double quotes; gzip files in S3, one per load balancer node every 5 minutes.

Fields used, in the documented order: ``type`` (0: http, https, h2, grpcs, ws, wss), ``time`` (1, ISO 8601,
when the response was sent), ``client:port`` (3), ``elb_status_code`` (8), ``"request"`` (12: method,
``protocol://host:port/uri``, HTTP version) and ``"user_agent"`` (13). Fields AWS adds at the end of the line
are ignored, as the documentation asks. ALB logs carry no cookies: the user is always the hashed client IP
+ user agent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..clicks_csv import BadLines
from ._tabular import blank_lines, column, raw_text, run_blocks
from .blocks import BLOCK_BYTES, Block, split_block
from .derive import NAT, Filtered, Requests, on_uniques, parse_times
from .settings import SourceSettings

NAME = "alb"
TYPES = frozenset({"http", "https", "h2", "grpcs", "ws", "wss"})
TYPE, TIME, CLIENT, STATUS, REQUEST, USER_AGENT = 0, 1, 3, 8, 12, 13
_FIRST = re.compile(rb"^(?:https?|h2|grpcs|wss?) \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z \S+ \S+:\d+ ")


def sniff(lines: list[bytes]) -> bool:
    return bool(lines) and _FIRST.match(lines[0]) is not None


def _ip(client: str) -> str:
    return client.rpartition(":")[0] if ":" in client else client


def _parts(request: str) -> tuple[str, str]:
    """``(method, URL)`` of a request line ``METHOD URL VERSION``; ``("", "")`` when it is not one."""
    pieces = request.split(" ")
    return (pieces[0], pieces[1]) if len(pieces) == 3 else ("", "")


def requests(block: Block) -> Requests:
    ends = block.line_ends()
    frame = split_block(block, sep=" ", usecols=[TYPE, TIME, CLIENT, STATUS, REQUEST, USER_AGENT], quoted=True)
    blank = blank_lines(block, ends)
    kinds = column(frame, TYPE)
    times = column(frame, TIME)
    assert kinds is not None and times is not None
    wrong = on_uniques(kinds, lambda u: np.array([k not in TYPES for k in u], dtype=bool))
    errors = {int(i): f"not an ALB access log entry: type {kinds[i]!r}" for i in np.flatnonzero(wrong & ~blank)}
    ts = parse_times(times, lambda t: pd.to_datetime(t, format="ISO8601", utc=True, errors="coerce"))
    request = column(frame, REQUEST)
    assert request is not None
    method = on_uniques(request, lambda u: np.array([_parts(r)[0] for r in u], dtype=object))
    uri = on_uniques(request, lambda u: np.array([_parts(r)[1] for r in u], dtype=object))
    client = column(frame, CLIENT)
    assert client is not None
    ip = on_uniques(client, lambda u: np.array([_ip(c) for c in u], dtype=object))
    return Requests(
        lines=np.arange(block.first_line, block.first_line + len(ends)),
        ts=np.where(blank, NAT, ts),
        ts_text=times,
        uri=uri,
        raw=raw_text(block, ends),
        status=column(frame, STATUS),
        method=method,
        ip=ip,
        user_agent=column(frame, USER_AGENT),
        errors=errors,
        keep=~blank,
    )


def chunks(
    path: str | Path,
    settings: SourceSettings,
    *,
    block_bytes: int = BLOCK_BYTES,
    skip_bad: bool = False,
    bad: BadLines,
    filtered: Filtered | None = None,
) -> Iterator[pd.DataFrame]:
    yield from run_blocks(
        path, settings, requests, block_bytes=block_bytes, skip_bad=skip_bad, bad=bad, filtered=filtered
    )
