"""Reading click logs (CSV, optionally gzip) with line-accurate errors and a bad-line policy.

A malformed line (missing field, extra field, bad timestamp, empty user or page, bytes that are not
UTF-8) is an error naming the file, the line and the reason, unless ``skip_bad`` is set: then it is
skipped, counted in a :class:`BadLines` report and, when a rejects path is given, written there as
``line,reason,raw``.
Nothing is dropped silently.

The fast path reads chunks with pandas (C parser); a file the C parser cannot split (a row with too
many fields) is re-read with Python's :mod:`csv` module, which knows every line number.
A file with bytes that are not UTF-8 is re-read the same way from the chunk that held them: the line
with such a byte is a bad line (``not UTF-8``), the others are read as usual.
Line numbers count the header as line 1. Quoted fields spanning several lines are supported by the
slow path only; the fast path assumes one record per line (the normal shape of a click log). Every chunk
carries the file line of each of its rows (``line``).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .records import CLICK_COLUMNS, RecordError

if TYPE_CHECKING:
    from _csv import Writer as CsvWriter  # what csv.writer returns (typeshed's name; not importable at run time)

DEFAULT_CHUNK_ROWS = 1_000_000
MAX_EXAMPLES = 5


@dataclass
class BadLines:
    """Counts and examples of rejected lines; optionally streams them to a rejects CSV."""

    rejects_path: str | Path | None = None
    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    first: RecordError | None = None  # the first bad line (file, line, reason)
    _fh: io.TextIOBase | None = field(default=None, repr=False)
    _writer: CsvWriter | None = field(default=None, repr=False)

    def add(self, source: str, line: int, reason: str, raw: str) -> None:
        self.count += 1
        raw = printable_raw(raw)
        if self.first is None:
            self.first = RecordError(reason, source=source, line=line, raw=raw)
        key = reason.split(":")[0]
        self.by_reason[key] = self.by_reason.get(key, 0) + 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{source}:{line}: {reason}")
        if self.rejects_path is not None:
            self._rejects(self.rejects_path).writerow([source, line, reason, raw])

    def _rejects(self, path: str | Path) -> CsvWriter:
        """The rejects CSV's writer, opening the file (and writing its header) on the first bad line."""
        if self._fh is None or self._writer is None:
            self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            self._writer = csv.writer(self._fh)
            self._writer.writerow(["source", "line", "reason", "raw"])
        return self._writer

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def summary(self) -> str:
        if not self.count:
            return "no bad lines"
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_reason.items()))
        where = f"; written to {self.rejects_path}" if self.rejects_path else ""
        return f"skipped {self.count} bad line(s) ({parts}){where}"


def printable_raw(raw: str) -> str:
    """``raw`` with the undecodable bytes of a non-UTF-8 line (read with ``surrogateescape``) shown as
    ``\\xNN``, so that it can be written to a UTF-8 rejects file and read in a message."""
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def utf8_problem(raw: str) -> str | None:
    """Why a line read with ``surrogateescape`` is not UTF-8 (``None`` when it is)."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = raw[exc.start].encode("utf-8", "surrogateescape")
        return f"not UTF-8: byte 0x{byte.hex()} at character {exc.start + 1}"
    return None


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text; bytes that are not UTF-8 are kept as lone surrogates (see :func:`utf8_problem`)."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="surrogateescape", newline="")
    return open(path, encoding="utf-8", errors="surrogateescape", newline="")


def _is_decode_error(exc: BaseException) -> bool:
    """A chunk of the fast path could not be decoded as UTF-8 (pandas raises UnicodeDecodeError, or pyarrow's
    ArrowInvalid for its string columns)."""
    return isinstance(exc, UnicodeDecodeError) or (type(exc).__name__ == "ArrowInvalid" and "UTF8" in str(exc))


def _check_header(columns: list[str], source: str) -> None:
    cols = [c.strip() for c in columns]
    if cols != list(CLICK_COLUMNS):
        raise RecordError(f"header must be {','.join(CLICK_COLUMNS)}, got {','.join(cols)}", source=source, line=1)


def _raw_lines(path: Path, wanted: set[int]) -> dict[int, str]:
    """The raw text of the given 1-based lines (one pass; used only for rows already found bad)."""
    out: dict[int, str] = {}
    last = max(wanted)
    with _open_text(path) as fh:
        for number, text in enumerate(fh, start=1):
            if number in wanted:
                out[number] = text.rstrip("\r\n")
            if number >= last:
                break
    return out


def _field_count(raw: str) -> int:
    return len(next(csv.reader([raw]), []))


@dataclass(frozen=True)
class _RowChecks:
    """The verdicts on each row of one chunk: boolean Series aligned with ``frame``'s rows."""

    frame: pd.DataFrame
    missing: pd.Series
    bad_ts: pd.Series
    empty_user: pd.Series
    empty_page: pd.Series

    def bad_mask(self) -> np.ndarray:
        """A writable bool ndarray of shape (n_rows,): the rows that fail any check."""
        return (self.missing | self.bad_ts | self.empty_user | self.empty_page).to_numpy().copy()

    def reason(self, pos: int) -> str:
        """Why row ``pos`` is bad (the first failed check, in the order of the fields)."""
        if self.missing.iat[pos]:
            row_na = self.frame.iloc[pos].isna()
            absent = [c for c in CLICK_COLUMNS if row_na[c]]
            return f"missing field(s): {', '.join(absent)}"
        if self.bad_ts.iat[pos]:
            return f"bad timestamp {self.frame['timestamp'].iat[pos]!r}: not ISO 8601"
        if self.empty_user.iat[pos]:
            return "empty user"
        return "empty page"

    def raw(self, pos: int) -> str:
        """Row ``pos`` joined back into a CSV line (missing fields as empty strings)."""
        return ",".join("" if pd.isna(v) else str(v) for v in self.frame.iloc[pos].tolist())


def _short_rows(
    path: Path, lines: np.ndarray, suspects: np.ndarray, flagged: dict[int, tuple[str, str]]
) -> dict[int, tuple[str, str]]:
    """``flagged`` plus the ``suspects`` (row positions) whose raw line in ``path`` has too few fields.

    The C parser pads a short row with empty strings; only the raw line tells "missing field" from
    "empty field". Returns ``flagged`` itself when no suspect is short, else an updated copy.
    """
    if not len(suspects):
        return flagged
    raws = _raw_lines(path, {int(lines[p]) for p in suspects})
    for pos in suspects:
        raw = raws.get(int(lines[pos]), "")
        n = _field_count(raw)
        if n < len(CLICK_COLUMNS):
            flagged = dict(flagged)
            flagged[int(pos)] = (f"missing field(s): {', '.join(CLICK_COLUMNS[n:])}", raw)
    return flagged


def _validate(
    frame: pd.DataFrame,
    lines: np.ndarray,
    source: str,
    skip_bad: bool,
    bad: BadLines,
    flagged: dict[int, tuple[str, str]] | None = None,
    path: Path | None = None,
) -> pd.DataFrame:
    """Parse timestamps and reject malformed rows of one chunk; returns ``ts (int64 ns UTC), user, page, line``.

    ``lines`` holds the 1-based file line of each row of ``frame``; ``flagged`` maps row positions
    already known to be bad to ``(reason, raw)`` (rows the splitter rejected).
    """
    flagged = flagged or {}
    ts_raw = frame["timestamp"]
    missing = ts_raw.isna() | frame["user"].isna() | frame["page"].isna()
    ts = pd.to_datetime(ts_raw.where(~missing, None), utc=True, format="ISO8601", errors="coerce")
    user_s = frame["user"].fillna("").astype("str").str.strip()
    page_s = frame["page"].fillna("").astype("str").str.strip()
    checks = _RowChecks(frame, missing, ts.isna() & ~missing, (user_s == "") & ~missing, (page_s == "") & ~missing)
    bad_mask = checks.bad_mask()
    if path is not None and bad_mask.any():
        has_empty = ((ts_raw.fillna("") == "") | (user_s == "") | (page_s == "")).to_numpy()
        suspects = np.flatnonzero(bad_mask & has_empty)
        flagged = _short_rows(path, lines, suspects if skip_bad else suspects[:1], flagged)
    if flagged:
        bad_mask[list(flagged)] = True
    if bad_mask.any():
        for pos in np.flatnonzero(bad_mask).tolist():
            reason, raw = flagged[pos] if pos in flagged else (checks.reason(pos), checks.raw(pos))
            if not skip_bad:
                raise RecordError(reason, source=source, line=int(lines[pos]), raw=raw)
            bad.add(source, int(lines[pos]), reason, raw)
        keep = ~bad_mask
        ts, user_s, page_s, lines = ts[keep], user_s[keep], page_s[keep], lines[keep]
    return pd.DataFrame(
        {
            "ts": ts.to_numpy(dtype="datetime64[ns]").astype("int64") if len(ts) else np.empty(0, "int64"),
            "user": user_s.reset_index(drop=True),
            "page": page_s.reset_index(drop=True),
            "line": np.asarray(lines, dtype="int64"),
        }
    )


def _slow_chunks(
    path: Path, chunk_rows: int, skip_bad: bool, bad: BadLines, done_through: int = 1
) -> Iterator[pd.DataFrame]:
    """Exact reader for files the C parser rejects: every line number is right, every row checked.

    Lines up to ``done_through`` were already delivered by the fast path and are passed over.
    """
    source = str(path)
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise RecordError("empty file (no header)", source=source, line=1) from None
        problem = utf8_problem(",".join(header))
        if problem is not None:
            raise RecordError(f"header {problem}", source=source, line=1)
        _check_header(header, source)
        rows: list[list[str | None]] = []
        lines: list[int] = []
        flagged: dict[int, tuple[str, str]] = {}
        width = len(CLICK_COLUMNS)
        for rec in reader:
            line = reader.line_num
            if not rec or line <= done_through:
                continue
            raw = ",".join(rec)
            problem = utf8_problem(raw)
            if problem is not None:
                flagged[len(rows)] = (problem, raw)
                rec = []  # its fields cannot be held as text; the row is rejected anyway
            elif len(rec) > width:
                flagged[len(rows)] = (f"expected {width} fields, saw {len(rec)}", raw)
            rows.append((rec + [None] * width)[:width])
            lines.append(line)
            if len(rows) >= chunk_rows:
                yield _validate(
                    pd.DataFrame(rows, columns=list(CLICK_COLUMNS), dtype=object),
                    np.asarray(lines),
                    source,
                    skip_bad,
                    bad,
                    flagged,
                )
                rows, lines, flagged = [], [], {}
        if rows:
            yield _validate(
                pd.DataFrame(rows, columns=list(CLICK_COLUMNS), dtype=object),
                np.asarray(lines),
                source,
                skip_bad,
                bad,
                flagged,
            )


def iter_click_chunks(
    path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, skip_bad: bool = False, bad: BadLines | None = None
) -> Iterator[pd.DataFrame]:
    """Yield validated chunks of a clicks CSV as frames ``ts`` (int64 ns since epoch, UTC), ``user``, ``page``
    and ``line`` (the row's line in the file).

    Raises :class:`RecordError` (file, line, reason) on the first malformed line unless ``skip_bad``.
    """
    path = Path(path)
    source = str(path)
    bad = bad if bad is not None else BadLines()
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file")
    first_line = 2
    try:
        # Type inference is ~8x faster than dtype=str in pandas 3; a chunk where a column was read as numbers
        # (e.g. numeric user ids, whose leading zeros would be lost) is re-read as text below.
        reader = pd.read_csv(path, na_filter=False, chunksize=chunk_rows, compression="infer", skip_blank_lines=True)
        produced = False
        with reader:
            for frame in reader:
                if not produced:
                    _check_header(list(frame.columns), source)
                    produced = True
                # keep_default_na=False keeps "" as "", but a short row leaves NaN: that is "missing".
                if not all(pd.api.types.is_string_dtype(t) for t in frame.dtypes):
                    frame = pd.read_csv(
                        path,
                        dtype=str,
                        na_filter=False,
                        compression="infer",
                        skiprows=range(1, first_line - 1),
                        nrows=len(frame),
                    )
                lines = np.arange(first_line, first_line + len(frame))
                yield _validate(frame, lines, source, skip_bad, bad, path=path)
                first_line += len(frame)
        if not produced:
            header = pd.read_csv(path, nrows=0, compression="infer").columns
            _check_header(list(header), source)
    except pd.errors.EmptyDataError:
        raise RecordError("empty file (no header)", source=source, line=1) from None
    except pd.errors.ParserError:
        # The C parser met a row it cannot split; re-read exactly, with true line numbers.
        yield from _slow_chunks(path, chunk_rows, skip_bad, bad, done_through=first_line - 1)
    except (UnicodeDecodeError, ValueError) as exc:
        if not _is_decode_error(exc):
            raise
        # Bytes that are not UTF-8: re-read from this chunk on, line by line (each such line is a bad line).
        yield from _slow_chunks(path, chunk_rows, skip_bad, bad, done_through=first_line - 1)


def read_clicks(path: str | Path, *, skip_bad: bool = False, bad: BadLines | None = None) -> pd.DataFrame:
    """Read a whole clicks CSV into a frame ``timestamp`` (datetime64 UTC), ``user``, ``page``."""
    chunks = list(iter_click_chunks(path, skip_bad=skip_bad, bad=bad))
    frame = (
        pd.concat(chunks, ignore_index=True)
        if chunks
        else pd.DataFrame({"ts": np.empty(0, "int64"), "user": [], "page": []})
    )
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(frame["ts"].to_numpy(dtype="int64"), utc=True),
            "user": frame["user"].to_numpy(dtype=object),
            "page": frame["page"].to_numpy(dtype=object),
        }
    )


def write_clicks(frame: pd.DataFrame, path: str | Path) -> None:
    """Write clicks (``timestamp`` datetime64 UTC, ``user``, ``page``) as CSV with ISO 8601 ``Z`` times."""
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    out = pd.DataFrame(
        {
            "timestamp": ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(".000000Z", "Z", regex=False),
            "user": frame["user"].astype(str),
            "page": frame["page"].astype(str),
        }
    )
    out.to_csv(path, index=False, compression="infer")
