#!/usr/bin/env python3
"""Write the command-line reference page (``docs/cli.md``) from the CLI's own parser.

Every subcommand (and every sub-subcommand, e.g. ``sagemaker train``) gets a section with its
``--help`` text exactly as :func:`clickstream_anomaly.cli.build_parser` renders it, at a fixed width of
100 columns so that the page does not depend on the terminal. ``tests/docs/test_cli_docs.py`` fails when
the committed page differs from what this script writes.

Usage: ``python scripts/generate_cli_docs.py`` (rewrite) or ``--check`` (exit 1 when out of date).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"
WIDTH = 100

INTRO = """\
# Command line

`clickstream-anomaly` (or `python -m clickstream_anomaly`) drives everything the project does on one
machine: it generates click data, computes window features, runs the detectors, sends clicks to
Kinesis and drives the SageMaker workflows. Each subcommand is below with its `--help` text.

Exit codes: 0 success; 1 a failure on the AWS side (a job or endpoint that failed, a refused call, a
timeout, records left unsent); 2 bad input or a bad option (the message names the file and line, or
the option); 130 interrupted.

This page is generated from the parser (`clickstream_anomaly/cli/`); after changing an option, run
`python scripts/generate_cli_docs.py`.
"""


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """``(command path, help text)`` for the parser and each subcommand below it, depth first, in order."""
    yield path, parser.format_help()
    for name, sub in _subcommands(parser):
        yield from walk(sub, (*path, name))


def render() -> str:
    """The whole page."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH + 2)  # argparse wraps at the terminal width minus 2
    try:
        sys.path.insert(0, str(ROOT))
        from clickstream_anomaly.cli import build_parser

        sections = list(walk(build_parser()))
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    out = [INTRO]
    for path, text in sections:
        level = "#" * min(2 + max(len(path) - 1, 0), 4)
        title = " ".join(("clickstream-anomaly", *path))
        out += [f"{level} `{title}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed page is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is out of date: run python scripts/generate_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
