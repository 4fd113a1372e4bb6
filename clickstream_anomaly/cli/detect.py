"""``clickstream-anomaly detect``: clicks or windows -> detections, incidents, metrics, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..baseline.calendar import check_timezone
from ..baseline.rules import DetectorRules
from ..clicks_csv import BadLines
from ..detectors import DEFAULT_DETECTORS, DETECTOR_NAMES, DeepARDetector, PageBaselineDetector, build_detectors
from ..detectors.pages import NO_PAGE_COUNTS
from ..evaluate import metrics_table, percentile_table
from ..features import (
    DEFAULT_FREQ,
    WINDOWS_JSON,
    PageCounts,
    compute_windows,
    read_windows,
    read_windows_json,
    sniff_table,
)
from ..generator import read_labels
from ..incidents import incident_table
from ..records import BASELINE, PAGES, RecordError
from ..sources import AUTO, FORMATS, Filtered, SourceSettings, detect_format
from ..thresholds import DEFAULT_THRESHOLD, parse_threshold
from ..workflow import DetectionResult, run_detection, write_outputs
from .features import add_bad_line_options, add_max_windows_option, add_source_options, source_settings
from .progress import progress_bar


def add_detection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--detectors",
        default=",".join(DEFAULT_DETECTORS),
        help=f"comma-separated detectors among {','.join(DETECTOR_NAMES)} (default {','.join(DEFAULT_DETECTORS)})",
    )
    p.add_argument(
        "--timezone",
        default="UTC",
        help="the site's IANA time zone, e.g. Europe/Paris: the baseline's time of day and day of week are local "
        "(default UTC)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="START/END",
        help="a period known to be unusual (holiday, maintenance), ISO times, e.g. 2024-12-25/2024-12-26: the "
        "baseline neither flags nor learns it (repeatable)",
    )
    p.add_argument(
        "--threshold",
        default=None,
        help="score threshold for the RCF detectors: sigma:K, percentile:P, value:X or f1 (needs --labels); "
        f"default: each detector's own ({DEFAULT_THRESHOLD} for rcf-streaming and rcf-batch, value:2.6 for "
        "rcf-context); the baseline and DeepAR decide themselves",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="DETECTOR.RULE=VALUE",
        help="a verdict rule of the baseline or baseline-pages, e.g. baseline.point_threshold=6 or "
        "baseline-pages.surge_z=inf (off); the rules and their defaults: docs/detectors.md (repeatable)",
    )
    p.add_argument(
        "--gap", type=int, default=1, help="windows without an anomaly allowed inside one incident (default 1)"
    )
    p.add_argument("--deepar-epochs", type=int, default=None, help="DeepAR training epochs (default: tuned)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the detectors (default 0)")
    p.add_argument("--no-report", action="store_true", help="skip report.html and the PNGs")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="run the detectors on clicks or windows; write incidents and a report",
        description="INPUT is a click log (a timestamp,user,page CSV, or a CloudFront, ALB, nginx/Apache or "
        "analytics log: --format), a windows CSV (window_start,urls,users,clicks,residual) or JSON Lines of "
        "window records (the features stream's, as the data lake keeps them, with their page_clicks), told "
        "apart by the content. "
        "DIR receives detections.csv, incidents.json, metrics.json (with --labels), "
        "report.html and PNGs.",
    )
    p.add_argument("input", type=Path, help="click log, windows CSV or window records (JSON Lines)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    p.add_argument("--labels", type=Path, default=None, help="labels CSV (window_start,is_anomaly[,incident])")
    p.add_argument("--freq", default=DEFAULT_FREQ, help=f"window length for clicks input (default {DEFAULT_FREQ})")
    add_detection_options(p)
    add_source_options(p)
    add_bad_line_options(p)
    add_max_windows_option(p)
    p.set_defaults(func=run)


def _windows_kind(path: Path, fmt: str, settings: SourceSettings) -> str | None:
    """``"windows"`` for a windows CSV, :data:`WINDOWS_JSON` for JSON Lines of window records, ``None`` for
    a click log (only asked when ``--format`` is ``auto``); a ``ValueError`` naming both kinds of input when
    ``path`` is neither windows nor a click log in a known format."""
    if fmt != AUTO:
        return None
    try:
        kind = sniff_table(path)
        return kind if kind in ("windows", WINDOWS_JSON) else None
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, EOFError, OSError) as exc:
        try:
            detect_format(path, settings)
        except RecordError:
            raise ValueError(f"{exc}; nor a log in a format --format names ({', '.join(FORMATS[1:])})") from None
        return None


def load_windows(path: Path, args: argparse.Namespace, pages: PageCounts | None = None) -> pd.DataFrame:
    """The windows of ``path`` (a windows file, or computed from a click log; ``pages`` is filled with the
    clicks per window and page of a click log or of window records that carry them)."""
    fmt = getattr(args, "format", AUTO)
    settings = source_settings(args)
    bad = BadLines(rejects_path=args.rejects)
    filtered = Filtered()
    try:
        kind = _windows_kind(path, fmt, settings)
        if kind == "windows":
            windows = read_windows(path, skip_bad=args.skip_bad, bad=bad)
        elif kind == WINDOWS_JSON:
            windows, counts = read_windows_json(path, skip_bad=args.skip_bad, bad=bad)
            if pages is not None and counts is not None:
                pages.frame = counts.frame
        else:
            windows = compute_windows(
                path,
                args.freq,
                skip_bad=args.skip_bad,
                bad=bad,
                fmt=fmt,
                settings=settings,
                filtered=filtered,
                max_windows=args.max_windows,
                pages=pages,
            )
    finally:
        bad.close()
    if not args.quiet:
        if bad.count:
            print(bad.summary(), file=sys.stderr)
        if filtered.count:
            print(filtered.summary(), file=sys.stderr)
    return windows


def rule_arguments(pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--rule`` as keyword arguments of the baseline detector (its own thresholds, the rest as its
    model's ``options``) and of the per-page detector."""
    try:
        rules = DetectorRules.from_pairs(pairs)
    except ValueError as exc:
        raise ValueError(f"--rule: {exc}") from None
    options: dict[str, Any] = rules.of(BASELINE)
    site: dict[str, Any] = {n: options.pop(n) for n in ("point_threshold", "drift_threshold") if n in options}
    return {**site, "options": options}, rules.of(PAGES)


def detect_and_write(
    windows: pd.DataFrame,
    args: argparse.Namespace,
    labels: pd.DataFrame | None,
    out: Path,
    pages: PageCounts | None = None,
) -> DetectionResult:
    names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--detectors {args.detectors!r} names no detector: choose among {','.join(DETECTOR_NAMES)}")
    rule = parse_threshold(args.threshold) if args.threshold is not None else None
    if rule is not None and rule.kind == "f1" and labels is None:
        raise ValueError("--threshold f1 needs --labels")
    site, page_rules = rule_arguments(args.rule)
    deepar_kw = {"random_state": args.seed}
    if args.deepar_epochs is not None:
        deepar_kw["epochs"] = args.deepar_epochs
    detectors = build_detectors(
        names,
        threshold=rule.spec if rule is not None else None,
        deepar=deepar_kw,
        rcf_streaming={"random_state": args.seed},
        rcf_batch={"random_state": args.seed},
        rcf_context={"random_state": args.seed, "timezone": args.timezone},
        baseline={
            "timezone": check_timezone(args.timezone),
            "exclude": parse_periods(args.exclude),
            **site,
        },
        baseline_pages={
            "pages": pages,
            "timezone": args.timezone,
            "exclude": parse_periods(args.exclude),
            **page_rules,
        },
    )

    def step(name: str, seconds: float) -> None:
        if not args.quiet:
            print(f"  {name}: {seconds:.1f} s", file=sys.stderr)

    if not args.quiet:
        print(f"running {', '.join(names)} on {len(windows):,} windows...", file=sys.stderr)
        without = pages is None or not len(pages.frame)
        if without and any(isinstance(d, PageBaselineDetector) for d in detectors):
            print(f"  {NO_PAGE_COUNTS}", file=sys.stderr)
    deepar = [d for d in detectors if isinstance(d, DeepARDetector)]
    with progress_bar(
        total=deepar[0].epochs if deepar else 0,
        unit="epoch",
        desc="deepar training",
        disable=args.quiet or not deepar,
        leave=False,
        unit_scale=False,
    ) as bar:
        for d in deepar:
            d.on_epoch = lambda epoch, loss, val: (
                bar.update(1),
                bar.set_postfix_str(f"loss {loss:.3f}" + ("" if val is None else f", held-out wQL {val:.3f}")),
            )
        result = run_detection(
            windows,
            detectors,
            labels=labels,
            gap_windows=args.gap,
            on_step=step,
            threshold=rule.spec if rule is not None else None,
            timezone=args.timezone,
        )
    paths = write_outputs(result, out, report=not args.no_report)
    if not args.quiet:
        print(f"\nincidents ({len(result.incidents)}), most severe first:")
        print(incident_table(result.incidents))
        if result.metrics:
            print("\nmetrics against the labels:")
            print(metrics_table(result.metrics))
            table = percentile_table(result.metrics)
            if table:
                print("\nthreshold by percentile of the scores:")
                print(table)
        print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return result


def parse_periods(items: list[str]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``START/END`` strings -> ``(start, end)`` timestamps (UTC when naive); ``ValueError`` naming a bad one."""
    out = []
    for item in items:
        start, sep, end = item.partition("/")
        lo: pd.Timestamp | None
        hi: pd.Timestamp | None
        try:
            lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        except (ValueError, TypeError):
            lo = hi = None
        if not sep or lo is None or hi is None or hi <= lo:
            raise ValueError(f"--exclude takes START/END with END after START, got {item!r}")
        out.append((lo, hi))
    return out


def run(args: argparse.Namespace) -> int:
    pages = PageCounts()
    windows = load_windows(args.input, args, pages)
    labels = read_labels(args.labels) if args.labels else None
    detect_and_write(windows, args, labels, args.output, pages)
    return 0
