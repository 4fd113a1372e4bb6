"""bench/streaming.py's Lambda point on a small grid point, so the bench keeps up with the state formats
(its prefilled per-shard state broke once when windows began to keep their clicks per page)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from streaming import BATCH, lambda_point  # noqa: E402


def test_a_lambda_point_runs_the_per_shard_engine_on_its_prefilled_state(moto_server):
    point = lambda_point(moto_server, users=400, shards=2, batches=1)
    assert point["sharded"]
    per_shard = {t["shard"] for t in point["timings"]}
    assert len(per_shard) == 2 and sum(t["records"] for t in point["timings"]) == 2 * BATCH
    assert point["state_bytes"] > 0
    from aws_lambda_powertools import Metrics

    assert not Metrics().metric_set  # Powertools' metrics state is shared by the process: none left behind
