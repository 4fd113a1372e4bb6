"""Producer throughput against a local moto server: one PutRecord per event vs PutRecords vs aggregation.

Same run, same server, same clicks (one day of the synthetic scenario as the stream's JSON), each method
into its own fresh stream:

* ``put_record loop``: the seed's loop, one ``PutRecord`` call per click (the baseline, 1x);
* ``PutRecords, per-user order, no aggregation``: ``produce --no-aggregate`` (one click per Kinesis record,
  one record per user per call; a record overtakes a held-back one by at most 300 s of event time);
* ``PutRecords, unordered, no aggregation``: ``produce --no-aggregate --unordered`` (full 500-record calls);
* ``PutRecords + aggregation``: ``produce`` defaults (a user's clicks within 300 s of event time share one
  Kinesis record of at most 25 KiB, newline-separated; per-user order kept; 300 s is half the aggregator's
  default allowed lateness);
* ``PutRecords + aggregation, unordered``: ``produce --unordered``;
* ``PutRecords + aggregation, --max-skew 60``: per-user order kept, a record may span (and overtake) 1
  minute of event time instead of 5 (why 5: docs/decisions/0005-producer-aggregation.md).

Client-side cost is small: the "sender alone" line is the sender with a client that answers at once (where
the time goes, and what was tried: docs/benchmarks.md, Producer).

Rates are clicks written per second of wall time; they depend on the machine and on moto's per-call and
per-record cost (moto appends each record in time proportional to the records already in the shard, so
fewer, larger records also spare it work). The ratio to the loop measured in the same run is the figure to
quote. Usage::

    .venv/bin/python bench/producer.py [--records 20000] [--loop-records 2000] [--volume 20] [--repeat 1]
        [--markdown]   # also writes the table to docs/benchmarks/producer.md
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_markdown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


METHODS = (  # name, KinesisSender keyword arguments
    ("PutRecords, per-user order, no aggregation", {"preserve_order": True, "aggregate_bytes": 0}),
    ("PutRecords, unordered, no aggregation", {"preserve_order": False, "aggregate_bytes": 0}),
    ("PutRecords + aggregation (default)", {"preserve_order": True}),
    ("PutRecords + aggregation, unordered", {"preserve_order": False}),
    ("PutRecords + aggregation, --max-skew 60", {"preserve_order": True, "max_skew": 60.0}),
)


def main() -> None:
    from moto.server import ThreadedMotoServer

    from clickstream_anomaly.aws.clients import kinesis_client
    from clickstream_anomaly.generator import Scenario, generate
    from clickstream_anomaly.producer import AGGREGATE_BYTES, Entry, KinesisSender, click_entry
    from clickstream_anomaly.records import Click

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20_000, help="clicks for the PutRecords runs")
    ap.add_argument("--loop-records", type=int, default=2_000, help="clicks for the PutRecord loop")
    ap.add_argument(
        "--volume", type=float, default=20.0, help="scenario traffic scale (20: ~25 clicks/s at the daily peak)"
    )
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="runs of every method (median rate reported)")
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/producer.md")
    args = ap.parse_args()
    t_start = time.perf_counter()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # moto accepts any; never a real account
        os.environ[key] = "testing"

    clicks, _ = generate(Scenario(start="2020-07-15 00:00", days=1, volume=args.volume, seed=1, incidents=()))
    clicks = clicks.iloc[: args.records]
    entries = [
        click_entry(Click(ts.to_pydatetime(), u, p))
        for ts, u, p in zip(clicks["timestamp"], clicks["user"], clicks["page"], strict=True)
    ]

    def fresh() -> list[Entry]:
        return [Entry(e.data, e.key, e.ts) for e in entries]

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    rows: dict[str, list[tuple[int, int, int, float]]] = {}  # name -> [(clicks, kinesis records, calls, s)]
    try:
        kin = kinesis_client(region="us-east-1", endpoint_url=url)
        raw = boto3.client("kinesis", region_name="us-east-1", endpoint_url=url)
        for run in range(args.repeat):
            stream = f"loop-{run}"
            raw.create_stream(StreamName=stream, ShardCount=args.shards)
            subset = entries[: args.loop_records]
            t = time.perf_counter()
            for e in subset:
                raw.put_record(StreamName=stream, Data=e.data, PartitionKey=e.key)
            dt = time.perf_counter() - t
            rows.setdefault("put_record loop (seed, baseline)", []).append((len(subset), len(subset), len(subset), dt))
            for i, (name, kw) in enumerate(METHODS):
                stream = f"m{i}-{run}"
                kin.create_stream(StreamName=stream, ShardCount=args.shards)
                kw = {"aggregate_bytes": AGGREGATE_BYTES, **kw}
                r = KinesisSender(kin, stream, **kw).send(fresh())
                rows.setdefault(name, []).append((r.sent, r.records, r.calls, r.seconds))
    finally:
        server.stop()

    class NoOp:  # the sender's own cost: a client that answers at once
        def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
            return {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1", "ShardId": "s"}] * len(Records)}

    own = {}
    for agg in (0, AGGREGATE_BYTES):
        r = KinesisSender(NoOp(), "noop", aggregate_bytes=agg).send(fresh())
        own[agg] = r.sent / r.seconds

    def rate(runs: list[tuple[int, int, int, float]]) -> float:
        return statistics.median(n / s for n, _, _, s in runs)

    base = rate(rows["put_record loop (seed, baseline)"])
    intro = (
        f"moto server on 127.0.0.1, {args.shards} shards, scenario volume {args.volume:g}, "
        f"{args.repeat} run(s) per method (median clicks/s; ratios within the same run)"
    )
    print(intro)
    print(
        f"{'method':45s} {'clicks':>7s} {'records':>8s} {'calls':>6s} {'clicks/rec':>10s} "
        f"{'clicks/s':>9s} {'vs loop':>8s}  per-run ratios"
    )
    table = []
    for name, runs in rows.items():
        n, recs, calls, _ = runs[0]
        r = rate(runs)
        per_run = ", ".join(
            f"{(a[0] / a[3]) / (b[0] / b[3]):.1f}x"
            for a, b in zip(runs, rows["put_record loop (seed, baseline)"], strict=True)
        )
        print(f"{name:45s} {n:7d} {recs:8d} {calls:6d} {n / recs:10.2f} {r:9.0f} {r / base:7.1f}x  {per_run}")
        table.append([name, n, recs, calls, f"{n / recs:.2f}", f"{r:,.0f}", f"{r / base:.1f}×", per_run])
    own_line = (
        f"sender alone (no-op client, per-user order): {own[0]:,.0f} clicks/s without aggregation, "
        f"{own[AGGREGATE_BYTES]:,.0f} with ({own[AGGREGATE_BYTES] / base:,.0f}x the loop)"
    )
    print(own_line)
    if args.markdown:
        header = ["method", "clicks", "Kinesis records", "calls", "clicks/record", "clicks/s", "vs loop", "per run"]
        text = "\n".join([intro, "", markdown_table(header, table), "", own_line])
        write_markdown("producer", text, seconds=time.perf_counter() - t_start)


if __name__ == "__main__":
    main()
