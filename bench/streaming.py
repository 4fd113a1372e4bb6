"""Streaming engines' throughput: the Lambda engine's aggregator against users per window and shards, and the
Flink job against parallelism, in one run.

**Lambda engine** (the deployed handler, ``lambdas/aggregator/app.py``, against a moto server on 127.0.0.1,
driven by :class:`~clickstream_anomaly.aws.kinesis_reader.ShardReader` with the deployed batch size 500).
A 10-minute window holds ``users`` distinct users; each shard's state starts in steady state (the
previous window, still open for the 10-minute lateness, with all of the shard's users, and the current
window half full), then every shard gets ``--batches`` batches of 500 clicks (one click per record) whose
times run from minute 5 of the current window to minute 1 of the next, so the last batch of each shard
crosses a window boundary and runs the merge step (summaries read, a window emitted to the features
stream). Each invocation is timed twice: wall time (``perf_counter``, which includes moto's handling of
the S3 and Kinesis calls: a local server, not S3's latency) and the handler thread's CPU time
(``thread_time``, the handler's own work: decoding, the sets, serialising). Lambda runs one invocation per
shard at a time, so the engine's throughput is the clicks divided by the busiest shard's summed time.
``--before REF`` also runs the single-object aggregator of git revision ``REF`` (all shards share one
object; its invocations cannot overlap, so its best case is the clicks divided by the *sum* of all
invocations, write conflicts not counted).

**Flink** (``.venv-flink/bin/python -m clickstream_job.local``, cwd ``flink/``, baseline detector): the
same users per window over ``--flink-windows`` windows, one click per user per window, at parallelism 1
and 2; clicks/s from the job's own wall time in ``summary.json`` (JVM start-up excluded).

Run: ``.venv/bin/python bench/streaming.py [--quick] [--before REF] [--markdown]``; ``--markdown`` writes
``docs/benchmarks/streaming.md`` (:mod:`report`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
if os.environ.get("BENCH_STREAMING_WORKER") != "1":  # a worker imports the revision on PYTHONPATH
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BATCH = 500  # the deployed event source mapping's batch size (stacks/ingest.py)
PAGES = 1000
NS = 1_000_000_000
STEP = 600 * NS
T0 = 1_717_243_200 * NS  # 2024-06-01T12:00Z: the current window's start


def user_ids(n: int) -> list[str]:
    """``n`` user ids shaped as the sources' salted hashes (16 hex digits)."""
    return [hashlib.blake2b(i.to_bytes(8, "little"), digest_size=8).hexdigest() for i in range(n)]


def shard_of(users: list[str], ranges: list[tuple[int, int]]) -> list[int]:
    """Each user's shard as Kinesis routes its partition key (MD5 into the shards' hash-key ranges)."""
    out = []
    for u in users:
        key = int.from_bytes(hashlib.md5(u.encode()).digest(), "big")
        out.append(next(i for i, (lo, hi) in enumerate(ranges) if lo <= key <= hi))
    return out


# ---- one Lambda point (run in this process, or in a worker for an older revision) --------------------
def _page_clicks(clicks: int) -> dict[str, int]:
    """``clicks`` spread over the :data:`PAGES` pages (a per-shard window keeps its clicks per page)."""
    return {f"/p{i}": clicks // PAGES + (i < clicks % PAGES) for i in range(PAGES)}


def _prefill_sharded(s3: Any, bucket: str, by_shard: dict[str, list[str]], wall: float) -> None:
    from clickstream_anomaly.aws.s3_store import S3ShardStores
    from clickstream_anomaly.streaming.aggregation import PartialWindow
    from clickstream_anomaly.streaming.merge import MergeState
    from clickstream_anomaly.streaming.shard_state import ShardState

    stores = S3ShardStores(s3, bucket)
    for sid, users in by_shard.items():
        st = ShardState(shard=sid, first_wall=wall)
        st.open[T0 - STEP] = PartialWindow(T0 - STEP, len(users), set(users), _page_clicks(len(users)))
        half = users[: len(users) // 2]
        st.open[T0] = PartialWindow(T0, len(half), set(half), _page_clicks(len(half)))
        st.shard_high[sid], st.shard_wall[sid] = T0 + 5 * 60 * NS - NS, wall
        st.next_start = T0 - STEP
        stores.shard(sid).save(st.to_bytes(), None)
        stores.put_summary(sid, st.summary().to_json())
    merge = MergeState(next_start=T0 - STEP, expected=set(by_shard), first_wall=wall)
    stores.merge().save(merge.to_bytes(), None)


def _prefill_single(s3: Any, bucket: str, by_shard: dict[str, list[str]], wall: float) -> None:
    from clickstream_anomaly.aws.s3_store import S3Store
    from clickstream_anomaly.streaming.aggregation import AggregatorState, PartialWindow

    users = [u for us in by_shard.values() for u in us]
    half = [u for us in by_shard.values() for u in us[: len(us) // 2]]
    pages = {f"/p{i}" for i in range(PAGES)}
    st = AggregatorState(first_wall=wall, expected=set(by_shard), next_start=T0 - STEP)
    st.open[T0 - STEP] = PartialWindow(T0 - STEP, len(users), set(users), set(pages))
    st.open[T0] = PartialWindow(T0, len(half), set(half), set(pages))
    for sid in by_shard:
        st.shard_high[sid], st.shard_wall[sid] = T0 + 5 * 60 * NS - NS, wall
    S3Store(s3, bucket, "aggregator/state.json.gz").save(st.to_bytes(), None)


def lambda_point(endpoint: str, users: int, shards: int, batches: int, seed: int = 0) -> dict[str, Any]:
    """Run one (users per window, shards) point; per-invocation timings by shard."""
    import uuid

    from clickstream_anomaly.aws import runtime
    from clickstream_anomaly.aws.kinesis_reader import ShardReader
    from clickstream_anomaly.aws.lambda_engine import LambdaEngineSettings, load_handlers
    from clickstream_anomaly.producer import Entry, KinesisSender
    from clickstream_anomaly.records import Click
    from clickstream_anomaly.streaming import aggregation

    run_id = uuid.uuid4().hex[:12]
    env = LambdaEngineSettings().environment(endpoint, run_id)
    with mock.patch.dict(os.environ, env):
        runtime.reset_clients()
        runtime._shards_of.cache_clear()
        s3, kin, sqs = runtime.client("s3"), runtime.client("kinesis"), runtime.client("sqs")
        bucket, stream = os.environ["STATE_BUCKET"], os.environ["CLICKS_STREAM_NAME"]
        s3.create_bucket(Bucket=bucket)
        kin.create_stream(StreamName=stream, ShardCount=shards)
        kin.create_stream(StreamName=os.environ["FEATURES_STREAM_NAME"], ShardCount=1)
        os.environ["FAILURE_QUEUE_URL"] = sqs.create_queue(QueueName=f"f-{run_id}")["QueueUrl"]
        listed = kin.list_shards(StreamName=stream)["Shards"]
        ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in listed]
        ids = [s["ShardId"] for s in listed]
        population = user_ids(users)
        where = shard_of(population, ranges)
        by_shard: dict[str, list[str]] = {sid: [] for sid in ids}
        for u, i in zip(population, where, strict=True):
            by_shard[ids[i]].append(u)
        wall = time.time()
        sharded = hasattr(aggregation, "last_closable")  # this revision has the per-shard engine
        (_prefill_sharded if sharded else _prefill_single)(s3, bucket, by_shard, wall)
        rng = random.Random(seed)
        entries = []
        n = batches * BATCH
        span = (6 * 60 * NS) + STEP - 5 * 60 * NS  # minute 5 of this window to minute 1 of the next
        for sid, us in by_shard.items():
            for k in range(n):
                ts = (T0 + 5 * 60 * NS + span * k // (n - 1)) / NS
                u = rng.choice(us)
                click = Click(aggregation._dt(int(ts * NS)), u, f"/p{rng.randrange(PAGES)}")
                entries.append((ts, sid, Entry(click.to_json().encode(), u, ts)))
        entries.sort(key=lambda e: e[0])
        KinesisSender(kin, stream).send(e for _, _, e in entries)
        handler = load_handlers(Path(aggregation.__file__).resolve().parents[2])["aggregator"]
        timings: list[dict[str, Any]] = []

        def timed(event: dict[str, Any], context: Any) -> Any:
            w0, c0 = time.perf_counter(), time.thread_time()
            out = handler.handler(event, context)
            cpu, w = time.thread_time() - c0, time.perf_counter() - w0
            handler.metrics.clear_metrics()  # never flushed here (lambda_engine.invoker): not into the next
            sid = event["Records"][0]["eventID"].split(":")[0]
            timings.append({"shard": sid, "records": len(event["Records"]), "wall": w, "cpu": cpu})
            return out

        from clickstream_anomaly.aws.lambda_engine import _Context

        ShardReader(kin, stream, batch_size=BATCH).drain(timed, _Context("aggregator"))
        sizes = [o["Size"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="aggregator/").get("Contents", [])]
        runtime.reset_clients()
        runtime._shards_of.cache_clear()
    return {"sharded": sharded, "timings": timings, "state_bytes": max(sizes) if sizes else 0}


def summarise(point: dict[str, Any], users: int, shards: int) -> dict[str, Any]:
    """Throughput of one point; each shard's first invocation (a cold container: imports, clients) is left
    out, as a deployed function's containers stay warm."""
    seen: set[str] = set()
    t = []
    for x in point["timings"]:
        if x["shard"] in seen:
            t.append(x)
        seen.add(x["shard"])
    clicks = sum(x["records"] for x in t)
    per_wall: dict[str, float] = {}
    per_cpu: dict[str, float] = {}
    for x in t:
        per_wall[x["shard"]] = per_wall.get(x["shard"], 0.0) + x["wall"]
        per_cpu[x["shard"]] = per_cpu.get(x["shard"], 0.0) + x["cpu"]
    # per-shard state: shards run side by side (the busiest shard bounds); one object: one at a time
    wall = max(per_wall.values()) if point["sharded"] else sum(per_wall.values())
    cpu = max(per_cpu.values()) if point["sharded"] else sum(per_cpu.values())
    return {
        "engine": "per-shard" if point["sharded"] else "single object (before)",
        "users": users,
        "shards": shards,
        "invocations": len(t),
        "clicks": clicks,
        "ms_wall": 1000 * sum(x["wall"] for x in t) / len(t),
        "ms_cpu": 1000 * sum(x["cpu"] for x in t) / len(t),
        "wall": wall,
        "cpu": cpu,
        "rate_wall": clicks / wall,
        "rate_cpu": clicks / cpu,
        "state_mb": point["state_bytes"] / 1e6,
    }


def run_before(ref: str, grid: list[tuple[int, int]], batches: int) -> list[dict[str, Any]]:
    """The single-object aggregator of git revision ``ref``, in a worker process that imports it."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "clickstream_anomaly", "lambdas"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = dict(os.environ, PYTHONPATH=tmp, BENCH_STREAMING_WORKER="1")
        lambda_engine = Path(tmp) / "clickstream_anomaly" / "aws" / "lambda_engine.py"
        if not lambda_engine.exists():  # an older revision: borrow a local driver it can import
            _borrow_driver(lambda_engine, env)
        cmd = [sys.executable, __file__, "--worker", json.dumps({"grid": grid, "batches": batches})]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _borrow_driver(target: Path, env: dict[str, str]) -> None:
    """Write into ``target`` the newest version of this checkout's ``lambda_engine.py`` (the local driver)
    that imports against the older package beside it (later versions may use names it lacks)."""
    path = "clickstream_anomaly/aws/lambda_engine.py"
    log = subprocess.run(["git", "-C", str(ROOT), "log", "--format=%H", "--", path], check=True, capture_output=True)
    for rev in log.stdout.decode().split():
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True).stdout
        target.write_bytes(text)
        probe = [sys.executable, "-c", "import clickstream_anomaly.aws.lambda_engine"]
        if subprocess.run(probe, env=env, cwd=target.parents[2], capture_output=True).returncode == 0:
            return
    raise SystemExit(f"--before: no version of {path} imports against that revision's package")


def worker(spec: str) -> None:
    from clickstream_anomaly.aws.lambda_engine import local_server

    args = json.loads(spec)
    out = []
    with local_server() as url:
        lambda_point(url, 1000, 1, 2)  # warm-up: the server's and the clients' first requests
        for users, shards in args["grid"]:
            out.append(summarise(lambda_point(url, users, shards, args["batches"]), users, shards))
    print(json.dumps(out))


# ---- Flink ----------------------------------------------------------------------------------------
def flink_point(users: int, windows: int, parallelism: int, tmp: Path) -> dict[str, Any]:
    """One Flink run: ``windows`` windows of ``users`` users (one click each), at ``parallelism``."""
    path = tmp / f"clicks-{users}-{windows}.jsonl"
    if not path.exists():
        rng = random.Random(1)
        population = user_ids(users)
        with path.open("w", encoding="utf-8") as fh:
            for w in range(windows):
                start = (T0 + w * STEP) / NS
                for i, u in enumerate(population):
                    ts = start + 599.0 * i / users
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
                    fh.write(f'{{"timestamp":"{stamp}","user":"{u}","page":"/p{rng.randrange(PAGES)}"}}\n')
    out = tmp / f"out-{users}-{parallelism}"
    python = ROOT / ".venv-flink" / "bin" / "python"
    cmd = [str(python), "-m", "clickstream_job.local", str(path), "-o", str(out), "--detectors", "baseline"]
    cmd += ["--parallelism", str(parallelism)]
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'flink'}")
    began = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT / "flink", env=env, check=True, capture_output=True)
    total = time.perf_counter() - began
    summary = json.loads((out / "summary.json").read_text())
    clicks = users * windows
    assert summary["clicks"] == clicks, summary  # exact: every click is in a window
    return {
        "users": users,
        "parallelism": parallelism,
        "clicks": clicks,
        "seconds": summary["seconds"],
        "process": total,
        "rate": clicks / summary["seconds"],
    }


# ---- the run --------------------------------------------------------------------------------------
def lambda_table(rows: list[dict[str, Any]]) -> str:
    from report import markdown_table

    base = {(r["engine"], r["users"]): r for r in rows if r["shards"] == 1}
    body = []
    for r in rows:
        one = base.get((r["engine"], r["users"]))
        body.append(
            [
                r["engine"],
                f"{r['users']:,}",
                str(r["shards"]),
                str(r["invocations"]),
                f"{r['ms_wall']:,.0f}",
                f"{r['ms_cpu']:,.0f}",
                f"{r['rate_wall']:,.0f}",
                f"{r['rate_cpu']:,.0f}",
                f"{r['rate_wall'] / one['rate_wall']:.2f}" if one else "",
                f"{r['state_mb']:.1f}",
            ]
        )
    head = [
        "engine",
        "users / window",
        "shards",
        "invocations",
        "ms / invocation (wall)",
        "ms / invocation (CPU)",
        "clicks/s (wall)",
        "clicks/s (CPU)",
        "× 1 shard (wall)",
        "largest object MB",
    ]
    return markdown_table(head, body)


def flink_table(rows: list[dict[str, Any]]) -> str:
    from report import markdown_table

    base = {r["users"]: r for r in rows if r["parallelism"] == 1}
    body = [
        [
            f"{r['users']:,}",
            str(r["parallelism"]),
            f"{r['clicks']:,}",
            f"{r['seconds']:.1f}",
            f"{r['process']:.1f}",
            f"{r['rate']:,.0f}",
            f"{r['rate'] / base[r['users']]['rate']:.2f}" if r["users"] in base else "",
        ]
        for r in rows
    ]
    head = ["users / window", "parallelism", "clicks", "job s", "process s", "clicks/s (job)", "× parallelism 1"]
    return markdown_table(head, body)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a small grid (10 k and 100 k users; 1 and 4 shards)")
    ap.add_argument("--users", default=None, help="comma-separated users per window (default 10k,100k,1M)")
    ap.add_argument("--shards", default=None, help="comma-separated shard counts (default 1,4,16)")
    ap.add_argument("--batches", type=int, default=4, help="batches of 500 clicks per shard (default 4, >= 2)")
    ap.add_argument("--lambda-max-users", type=int, default=1_000_000, help="skip larger Lambda points")
    ap.add_argument("--before", default=None, help="also run the single-object aggregator of this git revision")
    ap.add_argument("--flink-windows", type=int, default=3)
    ap.add_argument("--flink-max-users", type=int, default=1_000_000)
    ap.add_argument("--no-flink", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="also write docs/benchmarks/streaming.md")
    args = ap.parse_args()
    began = time.perf_counter()
    users = [
        int(float(u.lower().replace("k", "e3").replace("m", "e6"))) for u in (args.users or "10k,100k,1M").split(",")
    ]
    shards = [int(s) for s in (args.shards or "1,4,16").split(",")]
    if args.quick:
        users, shards = [u for u in users if u <= 100_000], [s for s in shards if s <= 4]
        args.flink_max_users = min(args.flink_max_users, 100_000)
    grid = [(u, s) for u in users if u <= args.lambda_max_users for s in shards]

    from clickstream_anomaly.aws.lambda_engine import local_server

    rows = []
    with local_server() as url:
        lambda_point(url, 1000, 1, 2)  # warm-up: the server's and the clients' first requests
        for u, s in grid:
            rows.append(summarise(lambda_point(url, u, s, args.batches), u, s))
            r = rows[-1]
            print(
                f"lambda {r['engine']} users {u:,} shards {s}: {r['rate_wall']:,.0f} clicks/s wall, "
                f"{r['rate_cpu']:,.0f} CPU ({r['ms_wall']:.0f} ms/invocation)",
                flush=True,
            )
    if args.before:
        before_grid = [(u, s) for u, s in grid if s in (1, 4)]
        rows += run_before(args.before, before_grid, args.batches)
        for r in rows[-len(before_grid) :]:
            print(
                f"lambda before users {r['users']:,} shards {r['shards']}: {r['rate_wall']:,.0f} clicks/s", flush=True
            )
    flink_rows = []
    if not args.no_flink:
        with tempfile.TemporaryDirectory() as tmp:
            for u in (u for u in users if u <= args.flink_max_users):
                for p in (1, 2):
                    flink_rows.append(flink_point(u, args.flink_windows, p, Path(tmp)))
                    r = flink_rows[-1]
                    print(
                        f"flink users {u:,} parallelism {p}: {r['rate']:,.0f} clicks/s ({r['seconds']:.1f} s)",
                        flush=True,
                    )
                (Path(tmp) / f"clicks-{u}-{args.flink_windows}.jsonl").unlink()
    skipped = [u for u in users if u > args.lambda_max_users]
    flink_skipped = [u for u in users if u > args.flink_max_users]
    text = "\n".join(
        [
            "### Lambda engine (aggregator)",
            "",
            f"The deployed handler against a moto server on 127.0.0.1 ({args.batches} batches of {BATCH} clicks "
            "per shard, the first left out as a cold start, after a warm-up point; state in steady state: the "
            "previous window with "
            "all of a shard's users, the current one half full; the last batch of each shard crosses a window "
            "boundary and merges). *wall* includes "
            "moto's handling of the S3 and Kinesis calls (a local server in this process, not S3's latency); "
            "*CPU* is the handler thread's own time. clicks/s = clicks ÷ the busiest shard's summed time "
            "(Lambda runs one invocation per shard at a time); for the single object, ÷ the sum of all "
            "invocations (they cannot overlap on one object; write conflicts not counted)."
            + (
                f" Not run: {', '.join(f'{u:,}' for u in skipped)} users per window (`--lambda-max-users`)."
                if skipped
                else ""
            ),
            "",
            lambda_table(rows),
            "",
            "### Flink job (local mini-cluster)",
            "",
            f"`.venv-flink/bin/python -m clickstream_job.local` (baseline detector), {args.flink_windows} windows "
            "of one click per user; *job s* is the job's wall time from its `summary.json` (what clicks/s uses), "
            "*process s* adds the JVM and Python workers' start-up. Every click is in the windows (asserted)."
            + (
                f" Not run: {', '.join(f'{u:,}' for u in flink_skipped)} users per window (`--flink-max-users`)."
                if flink_skipped
                else ""
            ),
            "",
            flink_table(flink_rows) if flink_rows else "(not run: `--no-flink`)",
        ]
    )
    print(text)
    if args.markdown:
        from report import write_markdown

        write_markdown("streaming", text, seconds=time.perf_counter() - began)


if __name__ == "__main__":
    main()
