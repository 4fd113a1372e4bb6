"""The aggregator Lambda on a stream of 4 shards (moto; ShardReader as the event source mapping, batch size
500 as deployed): the features stream gets exactly the batch features, each shard writes only its own
state object, a retried batch doubles nothing, and a reshard (a parent closing, two children appearing)
loses nothing."""

from __future__ import annotations

import base64

import pandas as pd

from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.features import windows_from_frame, windows_to_records
from clickstream_anomaly.producer import AGGREGATE_BYTES, Entry, KinesisSender
from clickstream_anomaly.records import Click, Window


def entries(frame: pd.DataFrame) -> list[Entry]:
    """The clicks as producer entries, partitioned by user (``produce`` aggregates them as here)."""
    return [
        Entry(Click(ts.to_pydatetime(), u, p).to_json().encode(), u, ts.timestamp())
        for ts, u, p in zip(frame["timestamp"], frame["user"], frame["page"], strict=True)
    ]


def features(aws) -> list[Window]:
    out: list[Window] = []
    ShardReader(aws["kinesis"], "features").drain(
        lambda ev, ctx: out.extend(Window.from_json(base64.b64decode(r["kinesis"]["data"])) for r in ev["Records"])
    )
    return out


def test_four_shards_give_exactly_the_batch_features_and_a_retry_doubles_nothing(aws, lambda_context, day_clicks):
    from lambdas.aggregator import app

    kin, s3 = aws["kinesis"], aws["s3"]
    kin.create_stream(StreamName="clicks4", ShardCount=4)
    KinesisSender(kin, "clicks4", aggregate_bytes=AGGREGATE_BYTES).send(entries(day_clicks))
    batches: list[dict] = []

    def handle(event, context):
        batches.append(event)
        return app.handler(event, context)

    ShardReader(kin, "clicks4", batch_size=500).drain(handle, lambda_context)
    assert len({b["Records"][0]["eventID"].split(":")[0] for b in batches}) == 4
    for event in batches[::7]:  # Lambda retries some batches: nothing is counted twice
        app.handler(event, lambda_context)
    got = features(aws)
    expected = windows_to_records(windows_from_frame(day_clicks))
    assert len(got) >= len(expected) - 3  # the last windows wait for the lateness to pass
    assert got == expected[: len(got)]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="state-bucket", Prefix="aggregator/")["Contents"]}
    shards = {s["ShardId"] for s in kin.list_shards(StreamName="clicks4")["Shards"]}
    assert keys == {"aggregator/merge.state"} | {f"aggregator/shards/{s}.state" for s in shards} | {
        f"aggregator/summaries/{s}.json" for s in shards
    }


def shard_records(kin, stream: str) -> dict[str, list[dict]]:
    """Every record now in each shard of ``stream`` (``get_records`` records)."""
    out: dict[str, list[dict]] = {}
    for shard in kin.list_shards(StreamName=stream)["Shards"]:
        sid = shard["ShardId"]
        it = kin.get_shard_iterator(StreamName=stream, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out[sid] = []
        while it:
            resp = kin.get_records(ShardIterator=it, Limit=10_000)
            out[sid] += resp["Records"]
            it = resp.get("NextShardIterator") if resp["Records"] else None
    return out


def deliver(handler, context, stream: str, records: dict[str, list[dict]], batch: int = 500) -> None:
    """The event source mapping: each shard's records in batches, round-robin over the shards."""
    from clickstream_anomaly.aws.kinesis_reader import kinesis_event_record

    pos = dict.fromkeys(records, 0)
    while any(pos[s] < len(r) for s, r in records.items()):
        for sid, recs in records.items():
            chunk, pos[sid] = recs[pos[sid] : pos[sid] + batch], pos[sid] + batch
            if chunk:
                event = {"Records": [kinesis_event_record(r, stream=stream, shard_id=sid) for r in chunk]}
                assert handler(event, context) == {"batchItemFailures": []}


def test_a_reshard_loses_no_click_and_counts_each_user_once(aws, lambda_context, day_clicks):
    """A parent shard splits into two children in the middle of a window (as UpdateShardCount does): the
    parent's records are read to its end first, then the children's; their users are counted once.
    moto keeps writing to a split parent, so the records written after the split are handed to the
    children by their hash keys here, as Kinesis would have stored them."""
    import hashlib

    from lambdas.aggregator import app

    kin = aws["kinesis"]
    kin.create_stream(StreamName="clicks2", ShardCount=2)
    clicks = entries(day_clicks)
    cut = len(clicks) // 2 + 37  # mid-window
    KinesisSender(kin, "clicks2", aggregate_bytes=AGGREGATE_BYTES).send(clicks[:cut])
    before = shard_records(kin, "clicks2")
    deliver(app.handler, lambda_context, "clicks2", before)
    parent = kin.list_shards(StreamName="clicks2")["Shards"][0]
    lo, hi = (int(parent["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    kin.split_shard(StreamName="clicks2", ShardToSplit=parent["ShardId"], NewStartingHashKey=str((lo + hi) // 2))
    children = [s for s in kin.list_shards(StreamName="clicks2")["Shards"] if s.get("ParentShardId")]
    assert len(children) == 2
    KinesisSender(kin, "clicks2", aggregate_bytes=AGGREGATE_BYTES).send(clicks[cut:])
    after = {sid: recs[len(before.get(sid, [])) :] for sid, recs in shard_records(kin, "clicks2").items()}
    routed: dict[str, list[dict]] = {c["ShardId"]: [] for c in children}
    for rec in after.pop(parent["ShardId"]):
        key = int(hashlib.md5(rec["PartitionKey"].encode()).hexdigest(), 16)
        (child,) = [
            c
            for c in children
            if int(c["HashKeyRange"]["StartingHashKey"]) <= key <= int(c["HashKeyRange"]["EndingHashKey"])
        ]
        routed[child["ShardId"]].append(rec | {"SequenceNumber": str(10**30 + len(routed[child["ShardId"]]))})
    assert all(routed.values())  # both children got clicks
    deliver(app.handler, lambda_context, "clicks2", {k: v for k, v in (after | routed).items() if v})
    got = features(aws)
    expected = windows_to_records(windows_from_frame(day_clicks))
    assert len(got) >= len(expected) - 3  # the split parent does not hold the windows back
    assert got == expected[: len(got)]  # the window of the split too: its users are counted once
