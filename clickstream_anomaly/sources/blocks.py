"""Whole lines of a log file in large blocks, with their line numbers, and splitting a block into fields.

A block is bytes that end on a line end, read from a plain or gzip file (told apart by gzip's magic
bytes, not the name). Splitting uses pandas' C parser on the whole block (the fast path); when the block
does not split into exactly one row per line (a lone ``\\r``, an unbalanced quote, a row the parser rejects)
it is split again line by line in Python, so every row keeps its true line number.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from ..records import RecordError

BLOCK_BYTES = 16 << 20
#: A line longer than this is a bad line (hostile input must not make a reader hold a whole file).
MAX_LINE_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_binary(path: str | Path) -> BinaryIO:
    """``path`` for reading bytes, decompressed when it is gzip."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def head_lines(path: str | Path, n: int = 5, max_bytes: int = 64 << 10) -> list[bytes]:
    """The first ``n`` lines of a (possibly gzip) file, without their line ends; for format sniffing."""
    try:
        with open_binary(path) as fh:
            data = fh.read(max_bytes)
    except (OSError, EOFError, zlib.error) as exc:
        raise RecordError(f"cannot read: {exc}", source=str(path)) from None
    return [line.rstrip(b"\r") for line in data.split(b"\n")[:n]]


@dataclass(frozen=True)
class Block:
    """Whole lines of one file: ``data`` (ends with ``\\n``) and the 1-based number of its first line."""

    first_line: int
    data: bytes

    @cached_property
    def ends(self) -> np.ndarray:
        """Offsets of the ``\\n`` ending each line, int64 array of shape (n_lines,) (computed once)."""
        return np.flatnonzero(np.frombuffer(self.data, np.uint8) == 10)

    def line_ends(self) -> np.ndarray:
        """:attr:`ends`."""
        return self.ends

    def line(self, index: int, ends: np.ndarray | None = None) -> str:
        """The text of the block's ``index``-th line (0-based), without its line end."""
        ends = self.line_ends() if ends is None else ends
        start = int(ends[index - 1]) + 1 if index else 0
        return self.data[start : int(ends[index])].rstrip(b"\r").decode("utf-8", "replace")


def iter_blocks(
    path: str | Path, *, block_bytes: int = BLOCK_BYTES, bad_lines: list[tuple[int, str, str]] | None = None
) -> Iterator[Block]:
    """The file's lines in blocks of about ``block_bytes``. A line longer than :data:`MAX_LINE_BYTES` is cut
    out and appended to ``bad_lines`` as ``(line, reason, raw prefix)`` (an error when ``bad_lines`` is None)."""
    source = str(path)
    line = 1
    rest = b""
    skipping = False
    try:
        with open_binary(path) as fh:
            while True:
                data = fh.read(block_bytes)
                if not data:
                    break
                if skipping:  # inside an over-long line: drop bytes up to its end
                    cut = data.find(b"\n")
                    if cut < 0:
                        continue
                    data, skipping, line = data[cut + 1 :], False, line + 1
                data = rest + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    rest = data
                    if len(rest) > MAX_LINE_BYTES:
                        reason = f"line longer than {MAX_LINE_BYTES} bytes"
                        if bad_lines is None:
                            raise RecordError(reason, source=source, line=line)
                        bad_lines.append((line, reason, rest[:200].decode("utf-8", "replace")))
                        rest, skipping = b"", True
                    continue
                rest = data[cut + 1 :]
                block = _blank_overlong(Block(line, data[: cut + 1]), source, bad_lines)
                yield block
                line += len(block.ends)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise RecordError(f"corrupt gzip: {exc}", source=source, line=line) from None
    if rest and not skipping:
        yield Block(line, rest + b"\n")


def _blank_overlong(block: Block, source: str, bad_lines: list[tuple[int, str, str]] | None) -> Block:
    """``block`` with each line longer than :data:`MAX_LINE_BYTES` reported and replaced by an empty line
    (so the other lines keep their numbers)."""
    ends = block.line_ends()
    lengths = np.diff(ends, prepend=-1) - 1
    long_lines = np.flatnonzero(lengths > MAX_LINE_BYTES)
    if not len(long_lines):
        return block
    reason = f"line longer than {MAX_LINE_BYTES} bytes"
    if bad_lines is None:
        raise RecordError(reason, source=source, line=block.first_line + int(long_lines[0]))
    pieces, start = [], 0
    for i in long_lines.tolist():
        begin = int(ends[i]) - int(lengths[i])
        bad_lines.append((block.first_line + i, reason, block.data[begin : begin + 200].decode("utf-8", "replace")))
        pieces += [block.data[start:begin], b""]
        start = int(ends[i])
    pieces.append(block.data[start:])
    return Block(block.first_line, b"".join(pieces))


def split_block(
    block: Block, *, sep: str, usecols: Sequence[int], quoted: bool, names: int | None = None
) -> pd.DataFrame:
    """The fields ``usecols`` (0-based) of every line of ``block``: object columns named by their index, one row
    per line (missing fields are ``""``). ``quoted``: fields may be in double quotes with ``\\`` escapes.
    Every field is text as written: a line's values never depend on the other lines (read as numbers, a
    status ``200`` became ``200.0`` beside a ``0E0``, and every line of the block a bad status)."""
    n_lines = len(block.ends)
    try:
        frame = pd.read_csv(
            io.BytesIO(block.data),
            sep=sep,
            header=None,
            names=range(names) if names is not None else None,
            usecols=list(usecols),
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
            quotechar='"',
            doublequote=False,
            escapechar="\\" if quoted else None,
            encoding="utf-8",  # strict (errors="replace" takes a slow path): bad bytes -> the line-by-line split
            engine="c",
        )
        if len(frame) == n_lines:
            return frame
    except (pd.errors.ParserError, ValueError, pd.errors.EmptyDataError):  # UnicodeDecodeError is a ValueError
        pass
    return _split_lines(block, sep=sep, usecols=usecols, quoted=quoted)


def _split_lines(block: Block, *, sep: str, usecols: Sequence[int], quoted: bool) -> pd.DataFrame:
    """Line-by-line split (the exact path): a line is never joined with the next, whatever its quotes."""
    texts = block.data.decode("utf-8", "replace").split("\n")[:-1]
    width = max(usecols) + 1
    rows: list[list[str]] = []
    for text in texts:
        text = text.rstrip("\r")
        if quoted:
            clean = text.replace("\r", " ").replace("\x00", "")
            try:
                parts = next(csv.reader([clean], delimiter=sep, quotechar='"', doublequote=False, escapechar="\\"), [])
            except csv.Error:
                parts = []
        else:
            parts = text.split(sep)
        parts = (parts + [""] * width)[:width]
        rows.append([parts[i] for i in usecols])
    return pd.DataFrame(rows, columns=list(usecols), dtype=object) if rows else pd.DataFrame(columns=list(usecols))


def field_counts(block: Block, sep: bytes) -> np.ndarray:
    """Number of ``sep``-separated fields on each line of an unquoted block, int64 array of shape (n_lines,)
    (0 for a blank line)."""
    arr = np.frombuffer(block.data, np.uint8)
    ends = block.ends
    seps = np.flatnonzero(arr == sep[0])
    before = np.searchsorted(seps, ends)
    per_line = np.diff(before, prepend=0)
    starts = np.concatenate(([0], ends[:-1] + 1))
    blank = (ends - starts) == 0
    blank |= ((ends - starts) == 1) & (arr[np.maximum(ends - 1, 0)] == 13)
    return np.where(blank, 0, per_line + 1)
