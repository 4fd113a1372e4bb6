"""The combined log format of nginx (its default ``combined``) and Apache (``%h %l %u %t \\"%r\\" %>s %b
\\"%{Referer}i\\" \\"%{User-agent}i\\"``); the common log format (without referer and user agent) too.

One request per line: ``host ident authuser [10/Oct/2000:13:55:36 -0700] "GET /path?q HTTP/1.1" 200 2326
"referer" "user agent"``. The time carries its UTC offset; quotes inside quoted fields are escaped
(``\\"`` by Apache, ``\\x22`` by nginx). Fields after the user agent are ignored. The user is the hashed
client address + user agent (``authuser`` is not used: it is a login name).
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

NAME = "combined"
HOST, TIME, ZONE, REQUEST, STATUS, USER_AGENT = 0, 3, 4, 5, 6, 9
_FIRST = re.compile(rb'^\S+ \S+ \S+ \[\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "')


def sniff(lines: list[bytes]) -> bool:
    return bool(lines) and _FIRST.match(lines[0]) is not None


def _parts(request: str) -> tuple[str, str]:
    pieces = request.split(" ")
    if len(pieces) in (2, 3):  # HTTP/0.9 request lines have no version
        return pieces[0], pieces[1]
    return "", ""


def requests(block: Block) -> Requests:
    ends = block.line_ends()
    frame = split_block(block, sep=" ", usecols=[HOST, TIME, ZONE, REQUEST, STATUS, USER_AGENT], quoted=True)
    blank = blank_lines(block, ends)
    when = column(frame, TIME) + " " + column(frame, ZONE)  # type: ignore[operator]
    ts = parse_times(when, lambda t: pd.to_datetime(t, format="[%d/%b/%Y:%H:%M:%S %z]", utc=True, errors="coerce"))
    request = column(frame, REQUEST)
    assert request is not None
    method = on_uniques(request, lambda u: np.array([_parts(r)[0] for r in u], dtype=object))
    uri = on_uniques(request, lambda u: np.array([_parts(r)[1] for r in u], dtype=object))
    return Requests(
        lines=np.arange(block.first_line, block.first_line + len(ends)),
        ts=np.where(blank, NAT, ts),
        ts_text=when,
        uri=uri,
        raw=raw_text(block, ends),
        status=column(frame, STATUS),
        method=method,
        ip=column(frame, HOST),
        user_agent=column(frame, USER_AGENT),
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
