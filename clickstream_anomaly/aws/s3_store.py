"""One S3 object as a state blob with optimistic concurrency: the S3 implementation of
:class:`clickstream_anomaly.streaming.state.Store` (read with its ETag, write with ``If-Match``)."""

from __future__ import annotations

from dataclasses import dataclass
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

    def save(self, data: bytes, etag: str | None) -> str:
        """Write if the object is still at ``etag`` (``None``: only if it does not exist yet)."""
        cond = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **cond)["ETag"]
        except Exception as exc:
            if error_code(exc) in CONFLICT_CODES:
                raise StateConflict(f"s3://{self.bucket}/{self.key} changed since it was read") from exc
            raise
