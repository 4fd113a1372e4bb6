"""The retry helper: retryable AWS codes are retried with backoff, others and the last failure raised."""

from __future__ import annotations

import random

import pytest

from clickstream_anomaly.retry import Backoff, call_with_retries


class Boom(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


def test_retries_then_succeeds_with_jittered_waits():
    calls, waits = [], []

    def fn():
        calls.append(1)
        if len(calls) < 3:
            raise Boom("ThrottlingException")
        return "ok"

    out = call_with_retries(
        fn, retryable={"ThrottlingException"}, backoff=Backoff(0.1, 1.0, random.Random(0)), sleep=waits.append
    )
    assert out == "ok" and len(calls) == 3 and len(waits) == 2
    assert 0 <= waits[0] <= 0.1 and 0 <= waits[1] <= 0.2


def test_other_errors_and_the_last_attempt_raise():
    with pytest.raises(Boom, match="ValidationError"):
        call_with_retries(lambda: (_ for _ in ()).throw(Boom("ValidationError")), retryable={"X"}, sleep=lambda s: None)
    n = []

    def always():
        n.append(1)
        raise Boom("X")

    with pytest.raises(Boom):
        call_with_retries(always, retryable={"X"}, attempts=3, sleep=lambda s: None)
    assert len(n) == 3
