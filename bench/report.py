"""Benchmark tables for the documentation site, written by the bench scripts themselves.

A bench script run with ``--markdown`` calls :func:`write_markdown` with its tables; the file
``docs/benchmarks/<name>.md`` then starts with one line that names the command, the date and the machine
(``nproc``, CPU model, load average at the start), and ``docs/benchmarks.md`` includes it (pymdownx
snippets). Nothing in those files is written by hand: to refresh a table, run the command its header names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTORY = ROOT / "docs" / "benchmarks"
MARKER = "<!-- written by bench/report.py: do not edit; rerun the command below -->"


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def nproc() -> int:
    """Processors this process may run on (what ``nproc`` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine() -> str:
    """``nproc 2, AMD EPYC, load average 1.05`` (the 1-minute load when the run started, where known)."""
    facts = [f"nproc {nproc()}", cpu_model()]
    with contextlib.suppress(OSError):
        facts.append(f"load average {os.getloadavg()[0]:.2f}")
    return ", ".join(facts)


_STARTED = {"machine": machine(), "date": dt.datetime.now(dt.UTC)}  # read when the bench starts, not at the end


def command(script: str, argv: Sequence[str] | None = None) -> str:
    """The command line that reproduces this run: ``.venv/bin/python bench/<script> <argv>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", f"bench/{Path(script).name}", *args])


def header(script: str, argv: Sequence[str] | None = None, seconds: float | None = None) -> str:
    """The first lines of a generated table file."""
    when = _STARTED["date"].strftime("%Y-%m-%d %H:%M UTC")
    took = f", {seconds:.0f} s" if seconds is not None else ""
    return f"{MARKER}\n\nMeasured {when} with `{command(script, argv)}` ({_STARTED['machine']}{took}).\n"


def write_markdown(
    name: str,
    text: str,
    *,
    script: str | None = None,
    argv: Sequence[str] | None = None,
    seconds: float | None = None,
    directory: Path = DIRECTORY,
) -> Path:
    """Write ``<directory>/<name>.md``: the header line (command, date, machine), then ``text``.

    ``script`` defaults to ``bench/<name>.py``; ``argv`` to this process's arguments. ``text`` is Markdown
    whose headings start at level 3 (the page that includes it owns levels 1 and 2). Returns the path.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad table name {name!r}: a plain file name without '.md'")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    body = text.strip("\n")
    path.write_text(header(script or f"{name}.py", argv, seconds) + "\n" + body + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)
    return path


def markdown_table(header_row: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (cells with ``|`` get ``/`` instead)."""
    lines = ["| " + " | ".join(header_row) + " |", "|" + "|".join("---" for _ in header_row) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)
