"""Producer throughput against a local moto server: PutRecords batching vs one PutRecord per event.

Same run, same server, same records (clicks of the synthetic scenario as the stream's JSON):

* ``put_record loop``: the seed's loop, one ``PutRecord`` call per click;
* ``PutRecords, per-user order``: :class:`KinesisSender` defaults (one entry per user per call, entries
  overtake a held-back one by at most 60 s of event time);
* ``PutRecords, unordered``: ``preserve_order=False`` (full 500-entry calls; ``produce --unordered``).

Records/s are wall-clock and depend on the machine and on moto's per-call cost; the ratio between
methods measured in one run is the figure to quote. Usage::

    .venv/bin/python bench/producer.py [--records 20000] [--loop-records 2000] [--volume 20]
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import boto3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    from moto.server import ThreadedMotoServer

    from clickstream_anomaly.generator import Scenario, generate
    from clickstream_anomaly.producer import KinesisSender, click_entry, kinesis_client
    from clickstream_anomaly.records import Click

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20_000, help="records for the PutRecords runs")
    ap.add_argument("--loop-records", type=int, default=2_000, help="records for the PutRecord loop")
    ap.add_argument("--volume", type=float, default=20.0,
                    help="scenario traffic scale (20: ~25 clicks/s at the daily peak)")
    ap.add_argument("--shards", type=int, default=4)
    args = ap.parse_args()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # moto accepts any; never a real account
        os.environ[key] = "testing"

    clicks, _ = generate(Scenario(start="2020-07-15 00:00", days=1, volume=args.volume, seed=1, incidents=()))
    clicks = clicks.iloc[: args.records]
    entries = [click_entry(Click(ts.to_pydatetime(), u, p))
               for ts, u, p in zip(clicks["timestamp"], clicks["user"], clicks["page"], strict=True)]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        kin = kinesis_client(region="us-east-1", endpoint_url=url)
        results = []

        raw = boto3.client("kinesis", region_name="us-east-1", endpoint_url=url)
        raw.create_stream(StreamName="loop", ShardCount=args.shards)
        subset = entries[: args.loop_records]
        t = time.perf_counter()
        for e in subset:
            raw.put_record(StreamName="loop", Data=e.data, PartitionKey=e.key)
        dt = time.perf_counter() - t
        results.append(("put_record loop (seed)", len(subset), len(subset), dt))

        for name, ordered in (("PutRecords, per-user order", True), ("PutRecords, unordered", False)):
            stream = "ordered" if ordered else "unordered"
            kin.create_stream(StreamName=stream, ShardCount=args.shards)
            fresh = [type(e)(e.data, e.key, e.ts) for e in entries]
            r = KinesisSender(kin, stream, preserve_order=ordered).send(fresh)
            results.append((name, r.sent, r.calls, r.seconds))
    finally:
        server.stop()

    class NoOp:  # the sender's own cost: a client that answers at once
        def put_records(self, StreamName, Records):
            return {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1", "ShardId": "s"}] * len(Records)}

    fresh = [type(e)(e.data, e.key, e.ts) for e in entries]
    r = KinesisSender(NoOp(), "noop").send(fresh)
    own = r.sent / r.seconds

    base = results[0][1] / results[0][3]
    print(f"moto server on 127.0.0.1, {args.shards} shards, scenario volume {args.volume:g}")
    print(f"{'method':30s} {'records':>8s} {'calls':>7s} {'rec/call':>8s} {'records/s':>10s} {'vs loop':>8s}")
    for name, n, calls, secs in results:
        rate = n / secs
        print(f"{name:30s} {n:8d} {calls:7d} {n / calls:8.1f} {rate:10.0f} {rate / base:7.1f}x")
    print(f"sender alone (no-op client, per-user order): {own:,.0f} records/s "
          f"({own / base:,.0f}x the loop): the PutRecords rows above are bound by moto's per-record work")


if __name__ == "__main__":
    main()
