"""One S3 object as a state blob with optimistic concurrency: the S3 implementation of
:class:`clickstream_anomaly.streaming.state.Store` (read with its ETag, write with ``If-Match``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..retry import error_code
from ..streaming.state import CONFLICT_CODES, StateConflict


@dataclass
class S3Store:
    """One S3 object as a versioned state blob: ``load() -> (bytes | None, etag)``, ``save(data, etag)``."""

    client: Any
    bucket: str
    key: str

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

    def save(self, data: bytes, etag: str | None) -> str:
        """Write if the object is still at ``etag`` (``None``: only if it does not exist yet)."""
        cond = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **cond)["ETag"]
        except Exception as exc:
            if error_code(exc) in CONFLICT_CODES:
                raise StateConflict(f"s3://{self.bucket}/{self.key} changed since it was read") from exc
            raise
