"""The Kinesis batch processor of the handlers: Powertools' partial-batch processor that logs every record
it fails (``poison record``, with its shard, sequence number and reason), whatever failed: not base64, not
JSON, a bad click or window. Lambda then retries the record and sends it to the failure queue."""

from __future__ import annotations

import binascii
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo


def poison_reason(exception: ExceptionInfo) -> str:
    """The logged reason of a failed record: ``not base64: ...`` or the exception's message."""
    kind, value = exception[0], exception[1]
    if isinstance(value, binascii.Error):
        return f"not base64: {value}"
    return str(value) or (kind.__name__ if kind is not None else "unknown error")


class LoggingBatchProcessor(BatchProcessor):
    """A Kinesis :class:`BatchProcessor` that logs each failed record with ``logger`` (level ERROR)."""

    def __init__(self, logger: Logger) -> None:
        super().__init__(event_type=EventType.KinesisDataStreams)
        self.poison_logger = logger

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> Any:
        kinesis = getattr(record, "kinesis", None)
        self.poison_logger.error(
            "poison record",
            extra={
                "shard": str(getattr(record, "event_id", "")).split(":")[0],
                "sequence_number": getattr(kinesis, "sequence_number", None),
                "reason": poison_reason(exception),
            },
        )
        return super().failure_handler(record, exception)
