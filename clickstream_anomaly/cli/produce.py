"""``clickstream-anomaly produce``: send a click log (CSV or JSON Lines) to a Kinesis stream."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..aws.clients import kinesis_client
from ..clicks_csv import BadLines
from ..producer import (
    AGGREGATE_BYTES,
    LINGER_SECONDS,
    MAX_SKEW_SECONDS,
    Backoff,
    BadInputError,
    Entry,
    KinesisSender,
    Pacer,
    ProducerError,
    send_file,
    source_entries,
)
from .features import add_bad_line_options, add_source_options, source_settings
from .progress import progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce",
        help="send click records to a Kinesis data stream (PutRecords, retries, pacing)",
        description="Send a click log (timestamp,user,page CSV, or JSON Lines with those keys, or a CloudFront, "
        "ALB, nginx/Apache or analytics log: --format; .gz accepted) to a Kinesis stream as JSON records "
        "keyed by user (a user's clicks aggregated into one record, newline-separated, unless --no-aggregate). "
        "Failed entries are re-sent with "
        "backoff; after bounded retries the unsent records are written to --unsent and the "
        "command exits 1. A bad input line stops it with exit 2 (its file, line and reason; every good click "
        "not sent, the ones after it too, in --unsent) unless --skip-bad; SIGTERM or Ctrl-C stop it with the "
        "unsent records written too (exit 143 or 130).",
    )
    p.add_argument("--stream", required=True, help="Kinesis stream name")
    p.add_argument("--input", required=True, type=Path, help="click log (see --format), optionally .gz")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--speedup", type=float, default=None, help="replay the clicks' own timing X times faster (1 = real time)"
    )
    pace.add_argument("--rate", type=float, default=None, help="send N records per second")
    p.add_argument("--region", default=None, help="AWS region (default: from the environment)")
    p.add_argument("--endpoint-url", default=None, help="Kinesis endpoint (e.g. a local moto server)")
    p.add_argument(
        "--retry-mode",
        choices=("standard", "adaptive"),
        default="standard",
        help="botocore retry mode for whole-call errors (default standard)",
    )
    p.add_argument("--max-attempts", type=int, default=8, help="tries per record before giving up (default 8)")
    p.add_argument(
        "--unsent",
        type=Path,
        default=Path("unsent.jsonl"),
        help="where to write records not sent after the retries (default unsent.jsonl)",
    )
    p.add_argument(
        "--unordered",
        action="store_true",
        help="allow several records of one user in a call (fuller batches for fast replays; a "
        "retried record may then land after a later one of the same user)",
    )
    p.add_argument(
        "--no-aggregate",
        action="store_true",
        help="one click per Kinesis record (default: a user's clicks within --max-skew share a "
        "record, up to --aggregate-bytes, newline-separated click JSON)",
    )
    p.add_argument(
        "--aggregate-bytes",
        type=int,
        default=AGGREGATE_BYTES,
        help=f"size limit of an aggregated record, data + key (default {AGGREGATE_BYTES}: one 25 KiB "
        "PUT payload unit; at most 1 MiB)",
    )
    p.add_argument(
        "--max-skew",
        type=float,
        default=MAX_SKEW_SECONDS,
        help="seconds of event time a record may overtake another (held-back or aggregated) "
        f"one by; keep it under the aggregator's allowed lateness (default {MAX_SKEW_SECONDS:g})",
    )
    p.add_argument(
        "--linger",
        type=float,
        default=LINGER_SECONDS,
        help="with --speedup/--rate: seconds a due click may wait for others to share its "
        f"PutRecords call (default {LINGER_SECONDS:g})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_source_options(p)
    add_bad_line_options(p)
    p.set_defaults(func=run)


def _reader(args: argparse.Namespace) -> Callable[[BadLines], Iterator[Entry]]:
    """The input's reader for :func:`~clickstream_anomaly.producer.send_file` (bad lines skipped into
    ``bad``): the producer's own for a clicks log, the sources for any other format."""
    return source_entries(args.input, args.format, source_settings(args))


#: Exit status when SIGTERM stopped the send (128 + 15, as a shell reports it).
EXIT_TERMINATED = 128 + signal.SIGTERM


@contextmanager
def stop_on_sigterm() -> Iterator[Callable[[], str | None]]:
    """Turn SIGTERM (a container stop, ``kill``) into an orderly stop of the send: the returned function
    gives the reason once the signal arrived, and the sender ends with every unsent record reported."""
    received: list[str] = []

    def on_term(signum: int, frame: object) -> None:
        received.append("terminated (SIGTERM)")

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: no handler, no stop
        yield lambda: None
        return
    try:
        yield lambda: received[0] if received else None
    finally:
        signal.signal(signal.SIGTERM, previous)


def report_unsent(exc: ProducerError, args: argparse.Namespace) -> Path:
    """Write the unsent records and print the error, the summary and the command that re-sends them."""
    path = exc.result.write_unsent(args.unsent)
    print(f"clickstream-anomaly produce: error: {exc}", file=sys.stderr)
    what = "good click(s) not sent" if isinstance(exc, BadInputError) else "unsent record(s)"
    note = ""
    if isinstance(exc, BadInputError):
        note = (
            f" (the bad line {exc.error.source}:{exc.error.line} is not in it: correct it and send it too, or run "
            "with --skip-bad)"
        )
    print(
        f"{exc.result.summary()}; wrote {exc.result.failed:,} {what} to {path}{note}; re-send with "
        f"`clickstream-anomaly produce --stream {args.stream} --input {path}`",
        file=sys.stderr,
    )
    return path


def run(args: argparse.Namespace) -> int:
    if args.max_attempts < 1:
        raise ValueError("--max-attempts must be at least 1")
    pacer = Pacer(speedup=args.speedup, rate=args.rate)
    client = kinesis_client(region=args.region, endpoint_url=args.endpoint_url, retry_mode=args.retry_mode)
    sender = KinesisSender(
        client,
        args.stream,
        max_attempts=args.max_attempts,
        backoff=Backoff(),
        preserve_order=not args.unordered,
        max_skew=args.max_skew,
        linger=args.linger,
        aggregate_bytes=0 if args.no_aggregate else args.aggregate_bytes,
    )
    bad = BadLines(rejects_path=args.rejects)
    try:
        with (
            stop_on_sigterm() as stop,
            progress_bar(total=None, unit="records", disable=args.quiet, desc="produce") as bar,
        ):
            result = send_file(
                sender,
                args.input,
                skip_bad=args.skip_bad,
                bad=bad,
                pacer=pacer,
                progress=bar,
                stop=stop,
                entries=_reader(args),
            )
    except ProducerError as exc:
        report_unsent(exc, args)
        if bad.count > 1 or (bad.count and not isinstance(exc, BadInputError)):
            print(bad.summary(), file=sys.stderr)
        if isinstance(exc, BadInputError):
            return 2
        if exc.stopped:
            return EXIT_TERMINATED
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return 130
        return 1
    finally:
        bad.close()
    if not args.quiet:
        print(f"{result.summary()}; {bad.summary()}", file=sys.stderr)
    return 0
