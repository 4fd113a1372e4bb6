"""``clickstream-anomaly replay``: a click log through a streaming engine as deployed, on this machine."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..clicks_csv import BadLines
from ..features import DEFAULT_FREQ, records_to_windows, write_windows
from ..producer import MAX_SKEW_SECONDS
from ..records import Click, write_detections_csv
from ..sources import Filtered, iter_clicks
from ..streaming.aggregation import DEFAULT_ALLOWED_LATENESS
from ..streaming.detection import DEFAULT_STREAMING_DETECTORS, streaming_detector_names
from .features import add_bad_line_options, add_source_options, source_settings

ENGINES = ("lambda", "flink")


class EngineError(RuntimeError):
    """The engine itself failed (the Flink job's exit status, its last log lines)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a click log through the Lambda or Flink engine locally",
        description="Run a click log through a streaming engine as it is deployed, without an AWS account: "
        "--engine lambda runs the Lambda handlers (producer, aggregator, detector) against a moto server on "
        "127.0.0.1; --engine flink runs the Flink job on a local mini-cluster (PyFlink's virtualenv, "
        "`make flink-venv`). Writes OUT/windows.csv and OUT/detections.csv in the formats of `features` and "
        "`detect`, and OUT/summary.json (counts: clicks in and in windows, rejected, late, invocations).",
    )
    p.add_argument("input", type=Path, help="click log (see --format), optionally .gz")
    p.add_argument("-o", "--output", required=True, type=Path, help="folder to write")
    p.add_argument("--engine", choices=ENGINES, default="lambda", help="streaming engine (default lambda)")
    p.add_argument("--freq", default=DEFAULT_FREQ, help=f"window length (default {DEFAULT_FREQ})")
    p.add_argument(
        "--lateness",
        default=DEFAULT_ALLOWED_LATENESS,
        help=f"the engine's allowed lateness (cdk.json allowed_lateness; default {DEFAULT_ALLOWED_LATENESS})",
    )
    p.add_argument(
        "--detectors",
        default=",".join(DEFAULT_STREAMING_DETECTORS),
        help="streaming detectors, comma-separated, of baseline, baseline-pages and rcf-streaming (cdk.json "
        f"streaming_detectors; default {','.join(DEFAULT_STREAMING_DETECTORS)})",
    )
    p.add_argument("--timezone", default="UTC", help="the site's IANA time zone (cdk.json timezone; default UTC)")
    p.add_argument("--shards", type=int, default=4, help="lambda: the clicks stream's shards (default 4, on-demand)")
    p.add_argument("--parallelism", type=int, default=1, help="flink: the job's parallelism (default 1)")
    p.add_argument(
        "--flink-python",
        type=Path,
        default=None,
        help="flink: the interpreter with PyFlink (default $FLINK_PYTHON, else .venv-flink/bin/python of the checkout)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    add_source_options(p)
    add_bad_line_options(p)
    p.set_defaults(func=run)


def read_clicks(args: argparse.Namespace, bad: BadLines, filtered: Filtered) -> list[Click]:
    clicks = list(
        iter_clicks(
            args.input,
            args.format,
            source_settings(args),
            skip_bad=args.skip_bad,
            bad=bad,
            filtered=filtered,
        )
    )
    if not clicks:
        raise ValueError(f"{args.input}: no clicks to replay")
    return clicks


def run(args: argparse.Namespace) -> int:
    try:
        detectors = tuple(streaming_detector_names(args.detectors.split(",")))
    except ValueError as exc:
        raise ValueError(f"--detectors {exc}") from exc
    bad, filtered = BadLines(rejects_path=args.rejects), Filtered()
    say = (lambda _msg: None) if args.quiet else (lambda msg: print(f"replay: {msg}", file=sys.stderr))
    try:
        clicks = read_clicks(args, bad, filtered)
    finally:
        bad.close()
    say(f"read {len(clicks):,} clicks from {args.input}; {bad.summary()}")
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        if args.engine == "lambda":
            summary = replay_lambda(clicks, args, detectors, say)
        else:
            summary = replay_flink(clicks, args, detectors, say)
    except EngineError as exc:
        print(f"clickstream-anomaly replay: error: {exc}", file=sys.stderr)
        return 1
    summary["bad_lines"] = bad.count
    summary["filtered"] = filtered.count
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if not args.quiet:
        print(
            f"wrote {summary['windows']:,} windows and {summary['detections']:,} detections to {args.output} "
            f"({args.engine} engine, {summary['seconds']:.1f} s)",
            file=sys.stderr,
        )
    return 0


def replay_lambda(
    clicks: list[Click], args: argparse.Namespace, detectors: tuple[str, ...], say: Any
) -> dict[str, Any]:
    from ..aws.lambda_engine import LambdaEngineSettings, run_lambda_engine

    settings = LambdaEngineSettings(
        freq=args.freq, lateness=args.lateness, detectors=detectors, timezone=args.timezone, shards=args.shards
    )
    quiet = logging.getLogger("werkzeug")  # the local server's access log
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        result = run_lambda_engine(clicks, settings, say=say)
    finally:
        quiet.setLevel(level)
    write_windows(records_to_windows(result.windows), args.output / "windows.csv")
    with open(args.output / "detections.csv", "w", newline="", encoding="utf-8") as fh:
        write_detections_csv(result.detections, fh)
    if result.rejected_clicks:
        rejected = "".join(json.dumps(r) + "\n" for r in result.rejected_clicks)
        (args.output / "rejected.jsonl").write_text(rejected, encoding="utf-8")
    return result.summary()


def flink_python(args: argparse.Namespace, root: Path) -> Path:
    """The PyFlink interpreter: ``--flink-python``, ``$FLINK_PYTHON`` or the checkout's ``.venv-flink``."""
    chosen = args.flink_python or os.environ.get("FLINK_PYTHON")
    path = Path(chosen) if chosen else root / ".venv-flink" / "bin" / "python"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: replay --engine flink needs PyFlink in its own virtualenv "
            "(`make flink-venv` creates .venv-flink; Java 17 too), or --flink-python"
        )
    return path


def replay_flink(clicks: list[Click], args: argparse.Namespace, detectors: tuple[str, ...], say: Any) -> dict[str, Any]:
    from ..aws.lambda_engine import checkout_root

    root = checkout_root()
    job = root / "flink" / "clickstream_job" / "local.py"
    if not job.is_file():
        raise FileNotFoundError(f"{job} not found: replay --engine flink runs the Flink job of a repository checkout")
    python = flink_python(args, root)
    jar = root / "build" / "flink" / "lib" / "clickstream-flink-connectors.jar"  # clickstream_job.local.JAR
    if not jar.is_file():
        raise FileNotFoundError(
            f"{jar} not found: replay --engine flink needs the job's Java operators (`make flink-jar`)"
        )
    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
        records = Path(tmp) / "clicks.jsonl"
        with open(records, "w", encoding="utf-8") as fh:
            fh.writelines(c.to_json() + "\n" for c in clicks)
        cmd = [
            str(python),
            "-m",
            "clickstream_job.local",
            str(records),
            "-o",
            str(args.output.resolve()),
            "--freq",
            args.freq,
            "--allowed-lateness",
            args.lateness,
            "--out-of-orderness",
            str(MAX_SKEW_SECONDS),
            "--detectors",
            ",".join(detectors),
            "--timezone",
            args.timezone,
            "--parallelism",
            str(args.parallelism),
        ]
        say(f"running the Flink job on a local mini-cluster ({python})")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "flink")])}
        done = subprocess.run(cmd, cwd=root / "flink", env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise EngineError(f"the Flink job failed (exit {done.returncode}):\n{tail}")
    summary: dict[str, Any] = json.loads((args.output / "summary.json").read_text(encoding="utf-8"))
    summary["engine"] = "flink"
    summary["clicks_in_windows"] = summary.pop("clicks")
    summary["clicks"] = len(clicks)
    summary["clicks_not_in_windows"] = len(clicks) - summary["clicks_in_windows"]
    return summary
