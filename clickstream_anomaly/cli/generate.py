"""``clickstream-anomaly generate``: write a synthetic clickstream and its window labels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..clicks_csv import write_clicks
from ..generator import BLOG_INCIDENTS, INCIDENT_KINDS, Scenario, generate, parse_incident, write_labels


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="write a synthetic clickstream (clicks.csv) and labels (labels.csv)",
        description="Write DIR/clicks.csv and DIR/labels.csv. The default scenario is the "
        "reference blog's: 9 days from 2020-07-07 with a user miscount on "
        "2020-07-15 10:10-11:20 and an outage 17:30-17:40.",
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder (created if needed)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same files")
    p.add_argument("--start", default="2020-07-07 00:00", help="first minute, UTC (default 2020-07-07 00:00)")
    p.add_argument("--days", type=int, default=9, help="number of days (default 9)")
    p.add_argument(
        "--volume",
        type=float,
        default=1.0,
        help="traffic scale (default 1.0: ~150 clicks per 10 min at the afternoon peak)",
    )
    p.add_argument(
        "--incident",
        action="append",
        default=[],
        metavar="KIND@START+DURATION",
        help=f"inject an incident (repeatable); kinds: {', '.join(INCIDENT_KINDS)}; "
        "e.g. bot-flood@2020-07-10T14:00+40min",
    )
    p.add_argument("--no-blog-incidents", action="store_true", help="leave out the blog's two incidents on 2020-07-15")
    p.add_argument(
        "--clicks-name", default="clicks.csv", help="clicks file name (default clicks.csv; a .gz suffix compresses)"
    )
    p.add_argument("--labels-name", default="labels.csv", help="labels file name (default labels.csv)")
    p.set_defaults(func=run)


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    incidents = () if args.no_blog_incidents else BLOG_INCIDENTS
    incidents = tuple(incidents) + tuple(parse_incident(s) for s in args.incident)
    return Scenario(start=args.start, days=args.days, volume=args.volume, seed=args.seed, incidents=incidents)


def run(args: argparse.Namespace) -> int:
    scenario = scenario_from_args(args)
    clicks, labels = generate(scenario)
    args.output.mkdir(parents=True, exist_ok=True)
    write_clicks(clicks, args.output / args.clicks_name)
    write_labels(labels, args.output / args.labels_name)
    print(
        f"wrote {len(clicks):,} clicks to {args.output / args.clicks_name} and "
        f"{len(labels):,} window labels ({int(labels['is_anomaly'].sum())} anomalous) to "
        f"{args.output / args.labels_name}",
        file=sys.stderr,
    )
    return 0
