"""What the line-based log readers share: a block's fields -> :class:`~.derive.Requests` -> clicks."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..clicks_csv import BadLines
from ..records import RecordError
from .blocks import BLOCK_BYTES, Block, iter_blocks
from .derive import Filtered, Requests, to_clicks
from .settings import SourceSettings

#: (block, its split fields by role, its line ends) -> Requests
Build = Callable[[Block, Mapping[str, np.ndarray], np.ndarray], Requests]


def column(frame: pd.DataFrame, index: int | None) -> pd.Series | None:
    """Column ``index`` of a split block, positions 0..n-1 (None when the format lacks it)."""
    if index is None:
        return None
    return frame[index].reset_index(drop=True)


def run_blocks(
    path: str | Path,
    settings: SourceSettings,
    requests: Callable[[Block], Requests | None],
    *,
    block_bytes: int = BLOCK_BYTES,
    skip_bad: bool,
    bad: BadLines,
    filtered: Filtered | None,
) -> Iterator[pd.DataFrame]:
    """The clicks of each block of ``path``, as :func:`~.derive.to_clicks` frames."""
    source = str(path)
    overlong: list[tuple[int, str, str]] = []
    for block in iter_blocks(path, block_bytes=block_bytes, bad_lines=overlong if skip_bad else None):
        for line, reason, raw in overlong:
            bad.add(source, line, reason, raw)
        overlong.clear()
        req = requests(block)
        if req is None:
            continue
        yield to_clicks(req, settings, source=source, skip_bad=skip_bad, bad=bad, filtered=filtered)
    for line, reason, raw in overlong:
        bad.add(source, line, reason, raw)


def raw_text(block: Block, ends: np.ndarray) -> Callable[[int], str]:
    return lambda pos: block.line(pos, ends)


def blank_lines(block: Block, ends: np.ndarray) -> np.ndarray:
    """True for the block's empty (or whitespace-only) lines, bool array of shape (n_lines,)."""
    starts = np.concatenate(([0], ends[:-1] + 1))
    short = np.flatnonzero((ends - starts) <= 2)
    out = np.zeros(len(ends), dtype=bool)
    for i in short.tolist():
        out[i] = not block.data[int(starts[i]) : int(ends[i])].strip()
    return out


def require(fields: list[str], needed: tuple[str, ...], source: str, line: int) -> None:
    missing = [f for f in needed if f not in fields]
    if missing:
        raise RecordError(f"the log has no {', '.join(missing)} field", source=source, line=line)
