"""Retries on top of botocore's: exponential backoff with full jitter, and one retry loop.

botocore's ``standard`` retry mode (every client of the project uses it) retries whole calls that fail
with throttling or transient errors. What it cannot retry is a call that *succeeds* with failed parts
(``PutRecords`` entries) or an error code it does not know as transient (a SageMaker endpoint's
``ModelNotReadyException``); :class:`Backoff` and :func:`call_with_retries` are the one implementation of
that second layer (the producer's entry retries and the scorer's endpoint calls).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Backoff:
    """Exponential backoff with full jitter: retry ``n`` (0-based) waits ``uniform(0, min(cap, base * 2**n))``
    seconds (AWS Architecture Blog, "Exponential Backoff And Jitter")."""

    base: float = 0.05
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, round_: int) -> float:
        """Seconds to wait before retry ``round_`` (0-based)."""
        return self.rng.uniform(0.0, min(self.cap, self.base * (2.0**round_)))


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def call_with_retries(
    fn: Callable[[], T],
    *,
    retryable: Collection[str],
    attempts: int = 4,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; retry when it raises an AWS error whose code is in ``retryable``, at most ``attempts``
    calls in all, waiting ``backoff.delay(n)`` between them; any other error, or the last one, is raised."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    backoff = backoff or Backoff(base=0.2, cap=5.0)
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if error_code(exc) not in retryable or attempt == attempts - 1:
                raise
            sleep(backoff.delay(attempt))
    raise AssertionError("unreachable")
