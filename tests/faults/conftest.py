"""Shared helpers of the fault-injection suite (one module per area: producer, S3 producer Lambda,
aggregator, detector, alerter, state, stack permissions, CLI). Every test here reproduces a case of
issue #14 and failed before its fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

T0 = datetime(2020, 7, 15, 10, 0, tzinfo=UTC)


def click_lines(n: int, *, start: datetime = T0, users: int = 7) -> list[str]:
    """``n`` CSV click lines, one a second, ``users`` users (no header)."""
    return [f"{(start + timedelta(seconds=i)).strftime('%Y-%m-%dT%H:%M:%SZ')},u{i % users},/p{i % 5}" for i in range(n)]


def jsonl_lines(n: int, *, start: datetime = T0, users: int = 7) -> list[str]:
    return [
        json.dumps(
            {
                "timestamp": (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "user": f"u{i % users}",
                "page": f"/p{i % 5}",
            }
        )
        for i in range(n)
    ]
