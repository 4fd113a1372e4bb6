"""The ``clickstream-anomaly`` command line. Each subcommand lives in its own module with a
``register(subparsers)`` function; add the module's name to :data:`COMMANDS` to expose it."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..records import RecordError

COMMANDS: tuple[str, ...] = ("generate", "features", "detect", "demo", "produce", "replay", "sagemaker", "state")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clickstream-anomaly",
        description="Clickstream anomaly detection: generate data, compute 10-minute features, detect "
        "anomalies locally, and drive the AWS pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def path_problem(exc: OSError) -> str:
    """A user's path mistake in words, naming the path (an output under a file, a file where a folder goes)."""
    path = exc.filename if exc.filename is not None else "?"
    if isinstance(exc, FileExistsError):
        return f"cannot create the folder {path}: a file of that name exists (give a folder path)"
    if isinstance(exc, NotADirectoryError):
        return f"cannot create or write {path}: a part of that path is a file, not a folder"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a folder; give a file path"
    return f"cannot write {path}: permission denied"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (RecordError, ValueError, FileNotFoundError) as exc:
        print(f"clickstream-anomaly {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        print(f"clickstream-anomaly {args.command}: error: {path_problem(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
