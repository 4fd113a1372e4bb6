"""S3 state objects with conditional writes against moto: first write, update, and the conflict path."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from clickstream_anomaly.aws.s3_store import S3Store
from clickstream_anomaly.streaming.state import StateConflict, transact


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="state-bucket")
        yield client


def test_first_write_needs_absence_and_updates_need_the_etag(s3):
    a = S3Store(s3, "state-bucket", "detector/state.bin")
    b = S3Store(s3, "state-bucket", "detector/state.bin")
    assert a.load() == (None, None)
    a.save(b"one", None)  # If-None-Match: *
    with pytest.raises(StateConflict):
        b.save(b"two", None)  # a second "first" write loses
    data, etag = a.load()
    assert data == b"one"
    _, etag_b = b.load()
    a.save(b"three", etag)  # If-Match
    with pytest.raises(StateConflict):
        b.save(b"four", etag_b)  # stale ETag: the concurrent writer must re-read
    assert a.load()[0] == b"three"


def test_transact_reapplies_the_change_after_a_conflict(s3):
    store = S3Store(s3, "state-bucket", "counter")
    other = S3Store(s3, "state-bucket", "counter")
    calls = {"n": 0}

    def change(state: list[int]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # a concurrent invocation writes between our read and our write
            transact(other, decode, encode, lambda s: s.append(100))
        state.append(1)

    def decode(raw):
        return [int(x) for x in raw.decode().split(",") if x] if raw else []

    def encode(state):
        return ",".join(map(str, state)).encode()

    transact(store, decode, encode, change)
    assert decode(store.load()[0]) == [100, 1]  # nothing lost, nothing doubled
    assert calls["n"] == 2


def test_a_botocore_without_conditional_writes_is_refused_at_once_with_the_fix(s3):
    # the S3 model as a botocore older than 1.35.99 has it: PutObject without IfMatch
    import botocore.session
    from botocore.model import ServiceModel

    from clickstream_anomaly.aws.s3_store import ConditionalWritesUnsupported

    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model("s3", "service-2")
    del model["shapes"]["PutObjectRequest"]["members"]["IfMatch"]
    old = boto3.client("s3", region_name="us-east-1")
    old.meta._service_model = ServiceModel(model, service_name="s3")
    with pytest.raises(ConditionalWritesUnsupported, match=r"no IfMatch on S3 PutObject.*botocore >= 1\.35\.99"):
        S3Store(old, "state-bucket", "detector/state.bin")
    S3Store(s3, "state-bucket", "detector/state.bin")  # today's botocore is accepted
