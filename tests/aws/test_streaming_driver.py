"""The local event-source driver, and the core's streaming modules importing no AWS SDK."""

from __future__ import annotations

import subprocess
import sys

import boto3
from moto import mock_aws

from clickstream_anomaly.aws.kinesis_reader import ShardReader


def test_driver_redelivers_from_lowest_failure_then_sends_poison_to_failure_destination():
    with mock_aws():
        kin = boto3.client("kinesis", region_name="us-east-1")
        kin.create_stream(StreamName="s", ShardCount=1)
        for i in range(10):
            kin.put_record(StreamName="s", Data=b"poison" if i == 4 else b"ok%d" % i, PartitionKey="k")
        seen: list[bytes] = []

        def handler(event, context):
            import base64

            failures = []
            for r in event["Records"]:
                data = base64.b64decode(r["kinesis"]["data"])
                if data == b"poison":
                    failures.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
                else:
                    seen.append(data)
            return {"batchItemFailures": failures}

        reader = ShardReader(kin, "s", batch_size=4, max_retry_attempts=2)
        reader.drain(handler)
        assert len(reader.on_failure) == 1
        assert set(seen) == {b"ok%d" % i for i in range(10) if i != 4}  # the shard moved on


def test_streaming_core_imports_without_aws_sdks():
    code = (
        "import sys\n"
        "for name in ('boto3', 'botocore', 'aws_cdk', 'sagemaker', 'aws_lambda_powertools'):\n"
        "    sys.modules[name] = None\n"
        "import clickstream_anomaly.producer, clickstream_anomaly.streaming.aggregation\n"
        "import clickstream_anomaly.streaming.alerting, clickstream_anomaly.streaming.detection\n"
        "import clickstream_anomaly.streaming.scoring, clickstream_anomaly.aws.runtime\n"
        "import clickstream_anomaly.aws.kinesis_reader, clickstream_anomaly.cli.produce\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
