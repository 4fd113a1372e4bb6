"""Producer under partial PutRecords failures: the faulty-run to clean-run time ratio, and the give-up rule.

The same clicks (one day of the synthetic scenario, as the stream's JSON) are sent with ``produce``'s
defaults (aggregation, per-user order, 300 s skew, ``--max-attempts 8``) to a local moto server, each run
into a fresh stream. A botocore hook rewrites a share of every ``PutRecords`` response to failed entries
(``ProvisionedThroughputExceededException``, the way tests/e2e and tests/aws inject them; moto never fails
an entry by itself). The clean run (0 %) is the reference of the ratios, measured in the same process.

What to expect (``clickstream_anomaly.producer``, the give-up rule): a call that wrote some entries is
progress, and its failed entries wait at most 50 ms x the failed share; only calls that wrote nothing back
off exponentially. The send gives up when 8 calls in a row wrote nothing, or when one record has been
tried 32 times (4 x ``--max-attempts``); what it did not send is reported (``--unsent``), never lost.
Issue #14's target: at most 2x the clean time at 10 % failed entries. Usage::

    .venv/bin/python bench/producer_faults.py [--records 50000] [--rates 0.1,0.5,0.9,1.0] [--repeat 1]
        [--markdown]   # also writes the table to docs/benchmarks/producer_faults.md
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from producer import free_port
from report import markdown_table, write_markdown


def inject_failures(client: Any, rate: float, seed: int) -> None:
    """Mark a share ``rate`` of the entries of every PutRecords response as throttled."""
    rng = random.Random(seed)

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        if "Records" not in parsed or rate <= 0:
            return
        failed = 0
        for rec in parsed["Records"]:
            if rng.random() < rate:
                rec.clear()
                rec.update({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "injected"})
                failed += 1
        parsed["FailedRecordCount"] = failed

    client.meta.events.register("after-call.kinesis.PutRecords", hook)


def main() -> None:
    from moto.server import ThreadedMotoServer

    from clickstream_anomaly.aws.clients import kinesis_client
    from clickstream_anomaly.generator import Scenario, generate
    from clickstream_anomaly.producer import AGGREGATE_BYTES, Entry, KinesisSender, ProducerError, click_entry
    from clickstream_anomaly.records import Click

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000, help="clicks per run (default 50 000, as in issue #14)")
    ap.add_argument("--rates", default="0.1,0.5,0.9,1.0", help="failed-entry shares to run besides the clean run")
    ap.add_argument("--volume", type=float, default=30.0, help="scenario traffic scale")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="runs per rate (median time reported)")
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/producer_faults.md")
    args = ap.parse_args()
    rates = [0.0, *(float(r) for r in args.rates.split(",") if r.strip())]
    t_start = time.perf_counter()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # moto accepts any; never a real account
        os.environ[key] = "testing"

    clicks, _ = generate(Scenario(start="2020-07-15 00:00", days=1, volume=args.volume, seed=1, incidents=()))
    clicks = clicks.iloc[: args.records]
    entries = [
        click_entry(Click(ts.to_pydatetime(), u, p))
        for ts, u, p in zip(clicks["timestamp"], clicks["user"], clicks["page"], strict=True)
    ]

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    runs: dict[float, list[dict[str, Any]]] = {}
    try:
        for run in range(args.repeat):
            for i, rate in enumerate(rates):
                stream = f"faults-{run}-{i}"
                client = kinesis_client(region="us-east-1", endpoint_url=url)
                client.create_stream(StreamName=stream, ShardCount=args.shards)
                inject_failures(client, rate, seed=run * 100 + i)
                sender = KinesisSender(client, stream, aggregate_bytes=AGGREGATE_BYTES)
                t = time.perf_counter()
                try:
                    result = sender.send([Entry(e.data, e.key, e.ts) for e in entries])
                    outcome = "completed"
                except ProducerError as exc:
                    result = exc.result
                    outcome = "gave up: " + str(exc).split(": ", 1)[1].split(" (")[0]
                seconds = time.perf_counter() - t
                runs.setdefault(rate, []).append(
                    {"result": result, "seconds": seconds, "outcome": outcome, "unsent": result.failed}
                )
    finally:
        server.stop()

    clean = statistics.median(r["seconds"] for r in runs[0.0])
    intro = (
        f"moto server on 127.0.0.1, {args.shards} shards, {len(entries):,} clicks, produce defaults (aggregation, "
        f"per-user order, --max-attempts 8), {args.repeat} run(s) per rate (median time); ratio = time / clean "
        "time in the same process"
    )
    print(intro)
    head = ["failed entries", "outcome", "clicks sent", "clicks unsent", "calls", "entries retried", "s", "vs clean"]
    print(" | ".join(head))
    table = []
    for rate, rs in runs.items():
        first = rs[0]
        res = first["result"]
        secs = statistics.median(r["seconds"] for r in rs)
        row = [
            f"{rate:.0%}",
            first["outcome"],
            f"{res.sent:,}",
            f"{first['unsent']:,}",
            f"{res.calls:,}",
            f"{res.retried:,}",
            f"{secs:.1f}",
            f"{secs / clean:.2f}×",
        ]
        print(" | ".join(row))
        table.append(row)
    if args.markdown:
        text = intro + "\n\n" + markdown_table(head, table)
        write_markdown("producer_faults", text, seconds=time.perf_counter() - t_start)


if __name__ == "__main__":
    main()
