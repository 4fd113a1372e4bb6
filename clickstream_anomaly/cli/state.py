"""``clickstream-anomaly state check|reset|rebuild``: the documented recovery for a corrupted or truncated
state object of a streaming Lambda (:mod:`clickstream_anomaly.aws.state_admin`; boto3 is imported on use)."""

from __future__ import annotations

import argparse
import os
import sys


def _common(p: argparse.ArgumentParser) -> None:
    from ..aws.state_admin import COMPONENTS

    p.add_argument("--component", required=True, choices=sorted(COMPONENTS), help="whose state")
    p.add_argument(
        "--bucket",
        default=os.environ.get("STATE_BUCKET"),
        help="the state bucket (the stack's StateBucket output; default: $STATE_BUCKET)",
    )
    p.add_argument("--key", default=None, help="the object key (default: the component's key in the stack)")
    p.add_argument("--region", default=None, help="AWS region (default: from the environment)")


def register(sub: argparse._SubParsersAction) -> None:
    top = sub.add_parser(
        "state",
        help="check or reset a streaming Lambda's state object in S3",
        description="Check a streaming Lambda's state object (decode it as the Lambda does) or reset it: "
        "copy it to a backup key next to it and delete it, so the component starts from an empty state.",
    )
    cmds = top.add_subparsers(dest="state_command", metavar="ACTION", required=True)
    check = cmds.add_parser("check", help="decode the state object; exit 1 when it is corrupt")
    _common(check)
    check.set_defaults(func=run_check)
    reset = cmds.add_parser("reset", help="back up and delete the state object (needs --yes)")
    _common(reset)
    reset.add_argument("--yes", action="store_true", help="do it (without: say what would be done)")
    reset.set_defaults(func=run_reset)
    rebuild = cmds.add_parser(
        "rebuild",
        help="learn the detector's state again from the data lake's window features (after a reset)",
        description="Feed the last --days of window features from the data lake to fresh detector models and "
        "write them as the detector's state, where none exists (reset a corrupt one first). Give the detector "
        "Lambda's settings (cdk.json: streaming_detectors, timezone, window) so the models match it.",
    )
    rebuild.add_argument(
        "--bucket",
        default=os.environ.get("STATE_BUCKET"),
        help="the state bucket (the stack's StateBucket output; default: $STATE_BUCKET)",
    )
    rebuild.add_argument("--lake-bucket", required=True, help="the data lake bucket (the stack's LakeBucket output)")
    rebuild.add_argument("--days", type=int, default=14, help="days of lake history to learn (default 14)")
    rebuild.add_argument("--detectors", default="baseline", help="the stack's streaming_detectors (default baseline)")
    rebuild.add_argument("--timezone", default="UTC", help="the stack's timezone (default UTC)")
    rebuild.add_argument("--freq", default="10min", help="the stack's window length (default 10min)")
    rebuild.add_argument("--key", default=None, help="the object key (default: the detector's key in the stack)")
    rebuild.add_argument("--region", default=None, help="AWS region (default: from the environment)")
    rebuild.set_defaults(func=run_rebuild)


def _s3(args: argparse.Namespace) -> object:
    if not args.bucket:
        raise ValueError("--bucket is required (or set STATE_BUCKET): the stack's StateBucket output")
    import boto3

    return boto3.session.Session().client(
        "s3", region_name=args.region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL")
    )


def run_check(args: argparse.Namespace) -> int:
    from ..aws.state_admin import check_state

    result = check_state(_s3(args), args.bucket, args.component, args.key)
    if result.status == "missing":
        print(f"{result.location}: no state yet (the {args.component} starts from an empty one)")
    elif result.status == "ok":
        print(f"{result.location}: ok ({result.size} bytes)")
    else:
        print(f"{result.location}: corrupt ({result.size} bytes): {result.reason}", file=sys.stderr)
        print(f"reset it with: clickstream-anomaly state reset --component {args.component} --yes", file=sys.stderr)
        return 1
    return 0


def run_reset(args: argparse.Namespace) -> int:
    from ..aws.state_admin import COMPONENTS, check_state, reset_state

    s3 = _s3(args)
    result = check_state(s3, args.bucket, args.component, args.key)
    loses = COMPONENTS[args.component][1]
    if result.status == "missing":
        print(f"{result.location}: no state to reset")
        return 0
    if not args.yes:
        print(
            f"would copy {result.location} ({result.status}) to a backup key and delete it; the {args.component} "
            f"loses {loses}. Re-run with --yes to do it.",
            file=sys.stderr,
        )
        return 2
    backup = reset_state(s3, args.bucket, args.component, args.key)
    print(
        f"{result.location} ({result.status}) moved to s3://{args.bucket}/{backup}; the {args.component} loses {loses}"
    )
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    from ..aws.state_admin import check_state, rebuild_detector_state
    from ..streaming.state import StateConflict

    if args.days < 1:
        raise ValueError("--days must be at least 1")
    s3 = _s3(args)
    existing = check_state(s3, args.bucket, "detector", args.key)
    if existing.status != "missing":
        print(
            f"{existing.location} exists ({existing.status}): reset it first with "
            "`clickstream-anomaly state reset --component detector --yes`",
            file=sys.stderr,
        )
        return 2
    environ = {"DETECTORS": args.detectors, "TIMEZONE": args.timezone, "WINDOW_FREQ": args.freq}
    try:
        done = rebuild_detector_state(s3, args.bucket, args.lake_bucket, days=args.days, environ=environ, key=args.key)
    except StateConflict:
        print(f"{existing.location} appeared meanwhile (the detector ran): reset it again first", file=sys.stderr)
        return 2
    print(
        f"wrote {done.location} ({done.size:,} bytes): {done.windows:,} windows learned, {done.first} to {done.last}; "
        "the detector continues after the last one"
    )
    return 0
