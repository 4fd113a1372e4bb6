"""CloudFront real-time log records: one request per record, the configuration's fields tab-separated in
the configured order (:attr:`~.settings.SourceSettings.realtime_fields`), no header.

Records arrive on a Kinesis data stream within seconds; Firehose can land them in S3 one per line, which
is the file this reader takes. ``timestamp`` is epoch seconds with milliseconds (``1598907106.384``),
``timestamp(ms)`` epoch milliseconds; ``cs-uri-stem`` includes the query string (cut off here). Sampling
(1–100 %) and best-effort delivery (a record late or, rarely, missing) are the source's limits.
:func:`decode_records` turns the data of stream records into clicks the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..clicks_csv import BadLines
from ._tabular import column, raw_text, run_blocks
from .blocks import BLOCK_BYTES, Block, field_counts, split_block
from .derive import NAT, Filtered, Requests, epoch_to_ns, on_uniques, to_clicks
from .settings import SourceSettings

NAME = "cloudfront-realtime"
ROLES = {
    "c-ip": "ip",
    "cs-method": "method",
    "cs-uri-stem": "uri",
    "sc-status": "status",
    "cs-user-agent": "user_agent",
    "cs-cookie": "cookie",
}


def sniff(lines: list[bytes], settings: SourceSettings) -> bool:
    """A tab-separated first line with as many fields as the configuration and an epoch timestamp."""
    if not lines or not lines[0]:
        return False
    parts = lines[0].split(b"\t")
    fields = settings.realtime_fields
    if len(parts) != len(fields):
        return False
    stamp = parts[fields.index("timestamp")] if "timestamp" in fields else parts[fields.index("timestamp(ms)")]
    return stamp.replace(b".", b"", 1).isdigit()


def requests(block: Block, settings: SourceSettings) -> Requests:
    """The requests of a block of real-time log lines."""
    fields = list(settings.realtime_fields)
    index = {name: i for i, name in enumerate(fields)}
    stamp_field, unit = ("timestamp", "s") if "timestamp" in index else ("timestamp(ms)", "ms")
    ends = block.line_ends()
    usecols = sorted({index[stamp_field], *[index[f] for f in ROLES if f in index]})
    frame = split_block(block, sep="\t", usecols=usecols, quoted=False, names=len(fields))
    counts = field_counts(block, b"\t")
    blank = counts == 0
    errors = {
        int(
            i
        ): f"wrong field count: expected {len(fields)} tab-separated fields (the configured ones), saw {int(counts[i])}"
        for i in np.flatnonzero((counts != len(fields)) & ~blank)
    }
    stamps = column(frame, index[stamp_field])
    assert stamps is not None
    ts = on_uniques(stamps, lambda u: epoch_to_ns(u, unit))
    roles = {role: column(frame, index.get(name)) for name, role in ROLES.items()}
    return Requests(
        lines=np.arange(block.first_line, block.first_line + len(ends)),
        ts=np.where(blank, NAT, ts),
        ts_text=stamps,
        raw=raw_text(block, ends),
        errors=errors,
        keep=~blank,
        **roles,  # type: ignore[arg-type]
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
        path,
        settings,
        lambda block: requests(block, settings),
        block_bytes=block_bytes,
        skip_bad=skip_bad,
        bad=bad,
        filtered=filtered,
    )


def decode_records(
    payloads: Sequence[bytes],
    settings: SourceSettings,
    *,
    source: str = "record",
    skip_bad: bool = True,
    bad: BadLines | None = None,
    filtered: Filtered | None = None,
    with_lines: bool = False,
) -> pd.DataFrame:
    """The clicks of a batch of real-time log records (each the data of one Kinesis record, ending in
    ``\\n`` or not) as a frame ``ts, user, page`` (and ``line``, the record's 1-based position in
    ``payloads``, with ``with_lines``); a bad record is reported with that position as the line. For the
    aggregator's ``clicks_format=cloudfront-realtime`` (:func:`~.stream.decode_stream_records`)."""
    bad = bad if bad is not None else BadLines()
    body = b"".join(p.rstrip(b"\r\n").replace(b"\n", b" ") + b"\n" for p in payloads)
    if not body:
        empty = pd.DataFrame({"ts": np.empty(0, np.int64), "user": [], "page": []})
        return empty.assign(line=np.empty(0, np.int64)) if with_lines else empty
    block = Block(1, body)
    return to_clicks(
        requests(block, settings),
        settings,
        source=source,
        skip_bad=skip_bad,
        bad=bad,
        filtered=filtered,
        with_lines=with_lines,
    )
