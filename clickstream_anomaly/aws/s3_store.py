"""One S3 object as a state blob with optimistic concurrency: the S3 implementation of
:class:`clickstream_anomaly.streaming.state.Store` (read with its ETag, write with ``If-Match``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..retry import error_code
from ..streaming.state import CONFLICT_CODES, StateConflict

#: The first botocore release seen with ``IfMatch`` on ``PutObject`` (1.35.68 lacks it).
CONDITIONAL_WRITES_BOTOCORE = "1.35.99"


class ConditionalWritesUnsupported(RuntimeError):
    """The S3 client's botocore cannot send ``If-Match`` on ``PutObject``: state writes would not be safe."""


def require_conditional_writes(client: Any) -> None:
    """Raise :class:`ConditionalWritesUnsupported` unless ``client``'s ``PutObject`` takes ``IfMatch`` and
    ``IfNoneMatch`` (a Lambda runtime's own botocore can predate them when a layer removes boto3)."""
    try:
        members = client.meta.service_model.operation_model("PutObject").input_shape.members
    except AttributeError:  # not a botocore client (a test double): nothing to check
        return
    missing = [name for name in ("IfMatch", "IfNoneMatch") if name not in members]
    if missing:
        try:
            import botocore

            version = botocore.__version__
        except ImportError:  # pragma: no cover - a botocore client without botocore
            version = "unknown"
        raise ConditionalWritesUnsupported(
            f"botocore {version} has no {' or '.join(missing)} on S3 PutObject, which the state writes need "
            f"(conditional writes); ship botocore >= {CONDITIONAL_WRITES_BOTOCORE} with the function"
        )


@dataclass
class S3Store:
    """One S3 object as a versioned state blob: ``load() -> (bytes | None, etag)``, ``save(data, etag)``.

    Made with a client whose botocore cannot send ``If-Match``, it raises
    :class:`ConditionalWritesUnsupported` at once (at a Lambda's cold start), not at the first write."""

    client: Any
    bucket: str
    key: str

    def __post_init__(self) -> None:
        require_conditional_writes(self.client)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def load(self) -> tuple[bytes | None, str | None]:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None, None
            raise
        return obj["Body"].read(), obj["ETag"]

    def load_if_changed(self, etag: str) -> tuple[bytes | None, str | None, bool]:
        """``(data, etag, changed)``: the object unless it is still at ``etag`` (a conditional GET; S3
        answers 304 without the body), then ``(None, etag, False)``."""
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key, IfNoneMatch=etag)
        except Exception as exc:
            code = error_code(exc)
            if code in ("304", "NotModified"):
                return None, etag, False
            if code in ("NoSuchKey", "404"):
                return None, None, True
            raise
        return obj["Body"].read(), obj["ETag"], True

    def save(self, data: bytes, etag: str | None) -> str:
        """Write if the object is still at ``etag`` (``None``: only if it does not exist yet)."""
        cond = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **cond)["ETag"]
        except Exception as exc:
            if error_code(exc) in CONFLICT_CODES:
                raise StateConflict(f"s3://{self.bucket}/{self.key} changed since it was read") from exc
            raise


#: The single-object aggregator state of earlier versions (migrated on the first run of this one).
LEGACY_AGGREGATOR_KEY = "aggregator/state.json.gz"


@dataclass
class S3ShardStores:
    """The per-shard aggregator's objects under ``prefix`` in one bucket
    (:class:`clickstream_anomaly.streaming.sharded.ShardStores`): ``merge.state``, ``shards/<id>.state``
    (conditional writes, :class:`S3Store`) and ``summaries/<id>.json`` (plain writes: one writer each)."""

    client: Any
    bucket: str
    prefix: str = "aggregator/"
    legacy_key: str | None = LEGACY_AGGREGATOR_KEY
    max_workers: int = 8
    _stores: dict[str, S3Store] = field(default_factory=dict, init=False, repr=False)

    def _store(self, key: str) -> S3Store:
        if key not in self._stores:
            self._stores[key] = S3Store(self.client, self.bucket, key)
        return self._stores[key]

    def merge(self) -> S3Store:
        return self._store(f"{self.prefix}merge.state")

    def shard(self, shard: str) -> S3Store:
        return self._store(f"{self.prefix}shards/{shard}.state")

    def put_summary(self, shard: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}summaries/{shard}.json", Body=data)

    def summary_location(self, shard: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}summaries/{shard}.json"

    def summaries(self) -> dict[str, bytes]:
        """Every shard's summary (one LIST, then the GETs in parallel)."""
        from concurrent.futures import ThreadPoolExecutor

        base = f"{self.prefix}summaries/"
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]

        def get(key: str) -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(keys)))) as pool:
            bodies = list(pool.map(get, keys))
        return {k[len(base) : -len(".json")]: b for k, b in zip(keys, bodies, strict=True)}

    def legacy(self) -> S3Store | None:
        return self._store(self.legacy_key) if self.legacy_key else None
