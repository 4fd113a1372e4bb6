"""The Kinesis batch processor of the handlers: Powertools' partial-batch processor that logs every record
it fails (``poison record``, with its shard, sequence number and reason), whatever failed: not base64, not
JSON, a bad click or window. Lambda then retries the record and sends it to the failure queue.

Powertools is imported when a processor is made (the package imports with the cloud libraries absent)."""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

ExceptionInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


def poison_reason(exception: ExceptionInfo) -> str:
    """The logged reason of a failed record: ``not base64: ...`` or the exception's message."""
    kind, value = exception[0], exception[1]
    if isinstance(value, binascii.Error):
        return f"not base64: {value}"
    return str(value) or (kind.__name__ if kind is not None else "unknown error")


def logging_batch_processor(logger: Any) -> Any:
    """A Kinesis ``BatchProcessor`` that logs each failed record with ``logger`` (level ERROR) and reports
    them as batch item failures even when every record of the batch fails (Powertools' default raises
    then: the invocation failed and the handler's work on what the records did hold, such as the good
    clicks of an aggregated record with one bad click, was lost on every retry)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    class LoggingBatchProcessor(BatchProcessor):
        def failure_handler(self, record: Any, exception: ExceptionInfo) -> Any:
            kinesis = getattr(record, "kinesis", None)
            logger.error(
                "poison record",
                extra={
                    "shard": str(getattr(record, "event_id", "")).split(":")[0],
                    "sequence_number": getattr(kinesis, "sequence_number", None),
                    "reason": poison_reason(exception),
                },
            )
            return super().failure_handler(record, exception)

    return LoggingBatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)


@contextmanager
def corrupt_state_reported(logger: Any, metrics: Any) -> Iterator[None]:
    """Around a handler's work: a :class:`~clickstream_anomaly.streaming.state.CorruptState` adds the
    ``CorruptState`` metric (its alarm fires) and an ERROR log line naming the object, the reason and the
    recovery command, then fails the invocation (the state is never reset here)."""
    from ..streaming.state import CorruptState

    try:
        yield
    except CorruptState as exc:
        metrics.add_metric(name="CorruptState", unit="Count", value=1)
        logger.error("corrupt state", extra={"object": exc.location, "reason": exc.reason, "recovery": exc.recovery})
        raise
