"""``clickstream-anomaly features``: clicks CSV -> windows CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..clicks_csv import BadLines
from ..features import DEFAULT_FREQ, DEFAULT_LATENESS, MAX_WINDOWS, compute_windows, write_windows
from ..sources import AUTO, FORMATS, Filtered, SourceSettings
from .progress import progress_bar


def add_source_options(p: argparse.ArgumentParser) -> None:
    """The click-source options shared by every command that reads click logs."""
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=AUTO,
        metavar="FORMAT",
        help="the input's format: clicks (timestamp,user,page CSV or JSON Lines), cloudfront (standard logs), "
        "cloudfront-realtime, alb, combined (nginx/Apache), jsonl or csv (with a field_map); default auto: "
        "told from the first line",
    )
    p.add_argument(
        "--source-config",
        type=Path,
        default=None,
        metavar="JSON",
        help="source settings as a JSON object: user_cookie, salt, statuses, methods, exclude_static, "
        "exclude_good_bots, page_rules, collapse_ids, realtime_fields, sampling_rate, field_map, "
        "timestamp_unit, hash_users (docs: Connect your traffic)",
    )


def source_settings(args: argparse.Namespace) -> SourceSettings:
    """The settings ``--source-config`` names (the defaults without it)."""
    path = getattr(args, "source_config", None)
    return SourceSettings.from_file(path) if path is not None else SourceSettings()


def add_bad_line_options(p: argparse.ArgumentParser) -> None:
    """The bad-input policy shared by every command that reads click logs."""
    p.add_argument(
        "--skip-bad", action="store_true", help="skip malformed lines instead of failing; they are counted and reported"
    )
    p.add_argument(
        "--rejects",
        type=Path,
        default=None,
        help="with --skip-bad: write skipped lines (source,line,reason,raw) to this CSV",
    )


def add_max_windows_option(p: argparse.ArgumentParser) -> None:
    """The cap on the windows a clicks input may make (a mis-dated click would make millions)."""
    p.add_argument(
        "--max-windows",
        type=int,
        default=MAX_WINDOWS,
        help=f"fail when the clicks span more windows than this (default {MAX_WINDOWS:,}: a mis-dated click "
        "makes millions of empty windows)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="compute window features (urls, users, clicks, residual)",
        description="Read a click log (a timestamp,user,page CSV, or a CloudFront, ALB, nginx/Apache or "
        "analytics log: --format; .gz accepted) and write one row per window, empty windows included.",
    )
    p.add_argument("input", type=Path, help="click log")
    p.add_argument("-o", "--output", required=True, type=Path, help="windows CSV to write")
    p.add_argument("--freq", default=DEFAULT_FREQ, help=f"window length (default {DEFAULT_FREQ})")
    p.add_argument(
        "--lateness",
        default=DEFAULT_LATENESS,
        help=f"how far out of time order input may be (default {DEFAULT_LATENESS})",
    )
    p.add_argument("--start", default=None, help="first window (default: the first click's)")
    p.add_argument("--end", default=None, help="last window (default: the last click's)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    add_source_options(p)
    add_bad_line_options(p)
    add_max_windows_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bad = BadLines(rejects_path=args.rejects)
    filtered = Filtered()
    try:
        with progress_bar(total=None, unit="clicks", disable=args.quiet, desc="features") as bar:
            windows = compute_windows(
                args.input,
                args.freq,
                skip_bad=args.skip_bad,
                bad=bad,
                lateness=args.lateness,
                start=args.start,
                end=args.end,
                progress=bar,
                fmt=args.format,
                settings=source_settings(args),
                filtered=filtered,
                max_windows=args.max_windows,
            )
    finally:
        bad.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_windows(windows, args.output)
    if not args.quiet:
        print(f"wrote {len(windows):,} windows to {args.output}; {bad.summary()}", file=sys.stderr)
        if filtered.count:
            print(filtered.summary(), file=sys.stderr)
    return 0
