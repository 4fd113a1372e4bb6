"""The sender and the ``produce`` command against moto (in-process and a moto server on 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import random

import boto3
import pytest
from moto import mock_aws

from clickstream_anomaly.aws.clients import kinesis_client
from clickstream_anomaly.aws.kinesis_reader import ShardReader
from clickstream_anomaly.cli import main
from clickstream_anomaly.clicks_csv import write_clicks
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.producer import Backoff, KinesisSender, entries_from_file
from clickstream_anomaly.records import decode_click_record


def inject_failures(client, rate: float, seed: int = 0, code="ProvisionedThroughputExceededException"):
    """Rewrite a share of each PutRecords response to failed entries (the records are in moto, though:
    the hook simulates the service rejecting them, so a re-send is what the stream should keep)."""
    rng = random.Random(seed)
    stats = {"injected": 0}

    def hook(parsed, **kwargs):
        if "Records" not in parsed:
            return
        failed = 0
        for rec in parsed["Records"]:
            if rng.random() < rate:
                rec.clear()
                rec.update({"ErrorCode": code, "ErrorMessage": "Rate exceeded for shard (injected)"})
                failed += 1
        parsed["FailedRecordCount"] = failed
        stats["injected"] += failed

    client.meta.events.register("after-call.kinesis.PutRecords", hook)
    return stats


def read_all(client, stream: str) -> list[dict]:
    out: list[dict] = []
    reader = ShardReader(client, stream, batch_size=10_000)

    def collect(event, context):
        out.extend(event["Records"])

    reader.drain(collect)
    return out


@pytest.fixture
def clicks_csv(tmp_path):
    clicks, _ = generate(Scenario(start="2020-07-15 09:00", days=1, volume=0.5, seed=3, incidents=()))
    clicks = clicks.iloc[:3000]
    path = tmp_path / "clicks.csv"
    write_clicks(clicks, path)
    return path


def test_sender_in_process_moto_with_injected_throttling(clicks_csv):
    with mock_aws():
        client = kinesis_client(region="us-east-1")
        client.create_stream(StreamName="clicks", ShardCount=3)
        stats = inject_failures(client, 0.2)
        sender = KinesisSender(client, "clicks", max_attempts=30, backoff=Backoff(base=0.0, cap=0.0))
        data = list(entries_from_file(clicks_csv))
        result = sender.send(data)
        assert result.sent == len(data) and stats["injected"] > 0 and result.retried == stats["injected"]
        stored = read_all(client, "clicks")
    # Every record reached the stream; the injected "failures" really were written too (moto accepted
    # them), so the stream holds each record once per attempt: at-least-once, none lost.
    import base64

    payloads = [base64.b64decode(r["kinesis"]["data"]) for r in stored]
    assert set(payloads) == {e.data for e in data}
    assert len(payloads) == len(data) + result.retried
    assert len(result.shards) == 3  # keyed by user: spread over the shards
    # One user's records sit on one shard.
    shard_of: dict[str, set[str]] = {}
    for r in stored:
        shard_of.setdefault(r["kinesis"]["partitionKey"], set()).add(r["eventID"].split(":")[0])
    assert all(len(s) == 1 for s in shard_of.values())


def test_botocore_standard_retry_mode_retries_whole_call_errors(moto_server):
    from botocore.awsrequest import AWSResponse

    client = kinesis_client(region="us-east-1", endpoint_url=moto_server, retry_mode="standard", max_attempts=5)
    client.create_stream(StreamName="retry", ShardCount=1)
    calls = {"n": 0}

    class Raw:
        def stream(self, **kw):
            yield b""

    def fail_twice(request, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:
            body = json.dumps({"__type": "InternalFailure", "message": "boom"}).encode()
            resp = AWSResponse(request.url, 500, {"Content-Type": "application/x-amz-json-1.1"}, Raw())
            resp._content = body
            return resp
        return None

    client.meta.events.register("before-send.kinesis.PutRecords", fail_twice)
    sender = KinesisSender(client, "retry")
    from clickstream_anomaly.producer import Entry

    result = sender.send([Entry(b'{"a":1}', "k1"), Entry(b'{"a":2}', "k2")])
    assert calls["n"] == 3 and result.calls == 1 and result.sent == 2


def test_produce_command_against_moto_server(moto_server, clicks_csv, capsys):
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_server)
    client.create_stream(StreamName="cli-clicks", ShardCount=2)
    code = main(
        [
            "produce",
            "--stream",
            "cli-clicks",
            "--input",
            str(clicks_csv),
            "--endpoint-url",
            moto_server,
            "--region",
            "us-east-1",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "sent 3,000 records (as " in err and "aggregated Kinesis records" in err and "failed 0" in err
    stored = read_all(client, "cli-clicks")
    clicks = [c for r in stored for c in decode_click_record(base64.b64decode(r["kinesis"]["data"]))[0]]
    assert sorted(c.to_json() for c in clicks) == sorted(e.data.decode() for e in entries_from_file(clicks_csv))
    assert len(stored) < 3000  # a user's clicks share records (aggregation is the default)
    for r in stored:  # an aggregated record is keyed by its clicks' user
        assert {c.user for c in decode_click_record(base64.b64decode(r["kinesis"]["data"]))[0]} == {
            r["kinesis"]["partitionKey"]
        }


def test_produce_no_aggregate_writes_one_click_per_record(moto_server, clicks_csv, capsys):
    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_server)
    client.create_stream(StreamName="cli-single", ShardCount=2)
    code = main(
        [
            "produce",
            "--stream",
            "cli-single",
            "--input",
            str(clicks_csv),
            "--endpoint-url",
            moto_server,
            "--region",
            "us-east-1",
            "--no-aggregate",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "sent 3,000 records in" in err and "aggregated" not in err
    assert len(read_all(client, "cli-single")) == 3000


def test_produce_command_fails_loudly_and_unsent_file_resends(moto_server, clicks_csv, tmp_path, monkeypatch, capsys):
    import clickstream_anomaly.cli.produce as produce_cli

    client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_server)
    client.create_stream(StreamName="cli-fail", ShardCount=1)

    def failing_client(**kw):
        c = kinesis_client(**kw)
        inject_failures(c, 1.0, code="InternalFailure")  # every entry fails
        return c

    monkeypatch.setattr(produce_cli, "kinesis_client", failing_client)
    monkeypatch.setattr(produce_cli, "Backoff", lambda: Backoff(base=0.0, cap=0.0))
    unsent = tmp_path / "unsent.jsonl"
    code = main(
        [
            "produce",
            "--stream",
            "cli-fail",
            "--input",
            str(clicks_csv),
            "--endpoint-url",
            moto_server,
            "--max-attempts",
            "2",
            "--unsent",
            str(unsent),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "error:" in err and "unsent" in err
    lines = unsent.read_text().splitlines()
    assert len(lines) == 3000
    monkeypatch.setattr(produce_cli, "kinesis_client", kinesis_client)
    code = main(["produce", "--stream", "cli-fail", "--input", str(unsent), "--endpoint-url", moto_server])
    assert code == 0
    assert "sent 3,000 records" in capsys.readouterr().err
