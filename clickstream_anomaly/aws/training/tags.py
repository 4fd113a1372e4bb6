"""Names and tags of the SageMaker resources this project creates (cleanup finds them by tag)."""

from __future__ import annotations

import time
from collections.abc import Mapping

PROJECT = "clickstream-anomaly"
PROJECT_TAG_KEY = "project"
ALGORITHM_TAG_KEY = "clickstream-anomaly:algorithm"
ALGORITHMS: tuple[str, ...] = ("rcf", "deepar")
#: The built-in algorithm (ECR repository name) behind each of our algorithm names.
BUILTIN: dict[str, str] = {"rcf": "randomcutforest", "deepar": "forecasting-deepar"}


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {list(ALGORITHMS)}")
    return algorithm


def project_tags(algorithm: str, extra: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """The tags put on every training job, model, endpoint config and endpoint we create."""
    tags = {PROJECT_TAG_KEY: PROJECT, ALGORITHM_TAG_KEY: check_algorithm(algorithm), **(extra or {})}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def is_project_resource(tags: list[dict[str, str]]) -> bool:
    return any(t.get("Key") == PROJECT_TAG_KEY and t.get("Value") == PROJECT for t in tags)


def stamp(now: float | None = None) -> str:
    """``YYYYmmdd-HHMMSS-mmm`` (UTC) to make names unique."""
    now = time.time() if now is None else now
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"


def job_name(algorithm: str, now: float | None = None) -> str:
    """Default training job name, e.g. ``clickstream-anomaly-rcf-20261123-204500-123`` (<= 63 chars)."""
    return f"{PROJECT}-{check_algorithm(algorithm)}-{stamp(now)}"


def endpoint_name(algorithm: str) -> str:
    """Default endpoint name: one stable name per algorithm, updated in place by ``deploy``."""
    return f"{PROJECT}-{check_algorithm(algorithm)}"
