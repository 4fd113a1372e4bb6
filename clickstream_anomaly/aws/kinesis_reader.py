"""A small local stand-in for Lambda's Kinesis event source mapping (tests, demos, moto).

:class:`ShardReader` reads every shard of a stream from ``TRIM_HORIZON`` and hands out batches as the
Lambda Kinesis event (``{"Records": [{"eventSource": "aws:kinesis", "kinesis": {...}}]}``); a partial batch
response (``batchItemFailures``) makes it re-deliver from the lowest failed sequence number, as Lambda does.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"


def kinesis_event_record(record: dict[str, Any], *, stream: str, shard_id: str, region: str = REGION) -> dict[str, Any]:
    """One ``get_records`` record -> one record of a Lambda Kinesis event (data base64-encoded)."""
    arrival = record.get("ApproximateArrivalTimestamp")
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": arrival.timestamp() if arrival is not None else 0.0,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/local-driver",
        "awsRegion": region,
        "eventSourceARN": f"arn:aws:kinesis:{region}:{ACCOUNT}:stream/{stream}",
    }


@dataclass
class ShardReader:
    """Reads a stream shard by shard like an event source mapping with ``ReportBatchItemFailures``."""

    client: Any
    stream: str
    batch_size: int = 100
    max_retry_attempts: int = 2
    on_failure: list[dict[str, Any]] = field(default_factory=list)
    _tries: dict[tuple[str, str], int] = field(default_factory=dict, init=False)
    _iterators: dict[str, str | None] = field(default_factory=dict, init=False)
    _pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict, init=False)

    def _refresh(self) -> None:
        shards = self.client.list_shards(StreamName=self.stream)["Shards"]
        for shard in shards:
            sid = shard["ShardId"]
            if sid not in self._iterators:
                self._iterators[sid] = self.client.get_shard_iterator(
                    StreamName=self.stream, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                self._pending[sid] = []

    def _fill(self, sid: str) -> None:
        it = self._iterators.get(sid)
        while it and len(self._pending[sid]) < self.batch_size:
            resp = self.client.get_records(ShardIterator=it, Limit=10_000)
            it = resp.get("NextShardIterator")
            self._pending[sid].extend(resp["Records"])
            if not resp["Records"]:
                break
        self._iterators[sid] = it

    def drain(
        self, handler: Callable[[dict[str, Any], Any], Any], context: Any = None, *, max_invocations: int = 100_000
    ) -> int:
        """Deliver every record now in the stream to ``handler(event, context)``; returns invocations.

        Failed items are re-delivered (from the lowest failed sequence number of the shard); an exception
        re-delivers the whole batch. Stops after ``max_invocations`` (a guard against a poison loop).
        """
        calls = 0
        self._refresh()
        progress = True
        while progress:
            progress = False
            for sid in sorted(self._iterators):
                self._fill(sid)
                batch = self._pending[sid][: self.batch_size]
                if not batch:
                    continue
                progress = True
                event = {"Records": [kinesis_event_record(r, stream=self.stream, shard_id=sid) for r in batch]}
                calls += 1
                if calls > max_invocations:
                    raise RuntimeError(f"more than {max_invocations} invocations: a poison loop?")
                try:
                    response = handler(event, context)
                    failures = (response or {}).get("batchItemFailures") or []
                except Exception:
                    failures = [{"itemIdentifier": batch[0]["SequenceNumber"]}]  # whole batch retried
                if failures:
                    lowest = min(int(f["itemIdentifier"]) for f in failures)
                    done = [r for r in batch if int(r["SequenceNumber"]) < lowest]
                    key = (sid, str(lowest))
                    self._tries[key] = self._tries.get(key, 0) + 1
                    if not done and self._tries[key] > self.max_retry_attempts:
                        # Retries exhausted: the record goes to the failure destination, the shard moves on.
                        self.on_failure.append({"shardId": sid, "sequenceNumber": str(lowest)})
                        done = batch[:1]
                else:
                    done = batch
                self._pending[sid] = self._pending[sid][len(done) :]
        return calls
