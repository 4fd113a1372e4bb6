"""Analytics exports: JSON Lines (``jsonl``) or CSV (``csv``) whose columns are named differently from
``timestamp,user,page`` (``event_time``, ``client_id``, ``page_location``...), read through
:attr:`~.settings.SourceSettings.field_map`.

The user column is taken as it is (an analytics client id is already a pseudonym) unless ``hash_users``;
with no user column, or an empty one, a mapped ``ip`` (+ ``user_agent``) gives the salted hash. The page may
be a URL, a path or a screen name. JSON Lines: one object per line, top-level keys only; CSV: a header line,
one record per line (the line numbers assume it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..clicks_csv import BadLines
from ..records import RecordError
from ._tabular import raw_text, run_blocks
from .blocks import BLOCK_BYTES, Block
from .derive import NAT, Filtered, Requests, epoch_to_ns, on_uniques, parse_times, to_clicks
from .settings import SourceSettings

JSONL, CSV = "jsonl", "csv"


def _timestamps(values: np.ndarray, unit: str) -> np.ndarray:
    if unit == "iso":
        return parse_times(values, lambda t: pd.to_datetime(t, format="ISO8601", utc=True, errors="coerce"))
    return on_uniques(values, lambda u: epoch_to_ns(u, unit))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _mapped_requests(
    columns: Mapping[str, np.ndarray], lines: np.ndarray, raw: Any, errors: dict[int, str], settings: SourceSettings
) -> Requests:
    fmap = settings.field_map
    ts_text = columns["timestamp"]
    ts = _timestamps(ts_text, settings.timestamp_unit)
    missing = {int(i): f"missing field: {fmap['timestamp']!r}" for i in np.flatnonzero(ts_text == "")}
    missing.update({int(i): f"missing field: {fmap['page']!r}" for i in np.flatnonzero(columns["page"] == "")})
    return Requests(
        lines=lines,
        ts=ts,
        ts_text=ts_text,
        uri=columns["page"],
        raw=raw,
        errors={**missing, **errors},
        any_page=True,
        user=columns.get("user"),
        ip=columns.get("ip"),
        user_agent=columns.get("user_agent"),
        status=columns.get("status"),
        method=columns.get("method"),
    )


def _json_block(block: Block, settings: SourceSettings) -> Requests:
    fmap = settings.field_map
    texts = block.data.decode("utf-8", "replace").split("\n")[:-1]
    roles = list(fmap)
    values: dict[str, list[str]] = {role: [] for role in roles}
    errors: dict[int, str] = {}
    keep = np.ones(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        item: Any = None
        if not text.strip():
            keep[i] = False
        else:
            try:
                item = json.loads(text)
            except ValueError as exc:
                errors[i] = f"not JSON: {exc}"
            else:
                if not isinstance(item, dict):
                    errors[i] = f"not a JSON object: {type(item).__name__}"
                    item = None
        for role in roles:
            values[role].append(_text(item.get(fmap[role])) if item is not None else "")
    columns = {role: np.array(v, dtype=object) for role, v in values.items()}
    ends = block.line_ends()
    lines = np.arange(block.first_line, block.first_line + len(texts))
    req = _mapped_requests(columns, lines, raw_text(block, ends), errors, settings)
    req.keep = keep
    for i in np.flatnonzero(~keep).tolist():
        req.errors.pop(int(i), None)
    req.ts = np.where(keep, req.ts, NAT)
    return req


def jsonl_chunks(
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
        lambda block: _json_block(block, settings),
        block_bytes=block_bytes,
        skip_bad=skip_bad,
        bad=bad,
        filtered=filtered,
    )


def csv_chunks(
    path: str | Path,
    settings: SourceSettings,
    *,
    chunk_rows: int = 1_000_000,
    skip_bad: bool = False,
    bad: BadLines,
    filtered: Filtered | None = None,
) -> Iterator[pd.DataFrame]:
    source = str(path)
    fmap = settings.field_map
    wanted = set(fmap.values())
    try:
        header = pd.read_csv(path, nrows=0, compression="infer").columns.tolist()
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RecordError(f"not a CSV with a header: {exc}", source=source, line=1) from None
    absent = [name for name in fmap.values() if name not in header]
    if absent:
        raise RecordError(f"the CSV has no column {', '.join(map(repr, absent))}", source=source, line=1)
    first = 2
    reader = pd.read_csv(
        path,
        usecols=lambda c: c in wanted,
        dtype=object,
        na_filter=False,
        chunksize=chunk_rows,
        compression="infer",
        encoding_errors="replace",
    )
    try:
        with reader:
            for frame in reader:
                columns = {role: frame[name].to_numpy(dtype=object) for role, name in fmap.items()}
                lines = np.arange(first, first + len(frame))
                rows = frame

                def raw(pos: int, rows: pd.DataFrame = rows) -> str:
                    return ",".join(str(v) for v in rows.iloc[pos].tolist())

                req = _mapped_requests(columns, lines, raw, {}, settings)
                yield to_clicks(req, settings, source=source, skip_bad=skip_bad, bad=bad, filtered=filtered)
                first += len(frame)
    except pd.errors.ParserError as exc:
        raise RecordError(f"cannot split the CSV: {exc}", source=source, line=first) from None
