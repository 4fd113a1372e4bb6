"""Find and delete the endpoints, endpoint configs and models this project created (by tag), so nothing
keeps billing. Resources without the ``project=clickstream-anomaly`` tag are never touched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SageMakerError
from .tags import ALGORITHM_TAG_KEY, is_project_resource

#: kind -> (list call, list key, name key, arn key, delete call, delete parameter). Deletion order matters:
#: endpoints first (they bill), then their configs, then models.
KINDS: dict[str, tuple[str, str, str, str, str, str]] = {
    "endpoint": ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn", "delete_endpoint", "EndpointName"),
    "endpoint-config": (
        "list_endpoint_configs",
        "EndpointConfigs",
        "EndpointConfigName",
        "EndpointConfigArn",
        "delete_endpoint_config",
        "EndpointConfigName",
    ),
    "model": ("list_models", "Models", "ModelName", "ModelArn", "delete_model", "ModelName"),
}


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    arn: str
    algorithm: str | None


def _pages(client: Any, call: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        kwargs = {"MaxResults": 100, **({"NextToken": token} if token else {})}
        resp = getattr(client, call)(**kwargs)
        items.extend(resp.get(key, []))
        token = resp.get("NextToken")
        if not token:
            return items


def find_project_resources(client: Any, algorithm: str | None = None) -> list[Resource]:
    """Every endpoint, endpoint config and model tagged as ours (optionally one algorithm's), in
    deletion order."""
    from botocore.exceptions import BotoCoreError, ClientError

    found = []
    try:
        for kind, (call, key, name_key, arn_key, _, _) in KINDS.items():
            for item in _pages(client, call, key):
                tags = client.list_tags(ResourceArn=item[arn_key]).get("Tags", [])
                if not is_project_resource(tags):
                    continue
                algo = next((t["Value"] for t in tags if t["Key"] == ALGORITHM_TAG_KEY), None)
                if algorithm is not None and algo != algorithm:
                    continue
                found.append(Resource(kind, item[name_key], item[arn_key], algo))
    except (ClientError, BotoCoreError) as exc:
        raise SageMakerError(f"cannot list SageMaker resources: {exc}") from exc
    return found


def cleanup(
    client: Any,
    *,
    algorithm: str | None = None,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> list[Resource]:
    """Delete (or with ``dry_run`` only list) our resources; returns what was (or would be) deleted."""
    from botocore.exceptions import BotoCoreError, ClientError

    resources = find_project_resources(client, algorithm)
    for res in resources:
        _, _, _, _, delete_call, param = KINDS[res.kind]
        if on_progress is not None:
            on_progress(f"{'would delete' if dry_run else 'deleting'} {res.kind} {res.name}")
        if dry_run:
            continue
        try:
            getattr(client, delete_call)(**{param: res.name})
        except (ClientError, BotoCoreError) as exc:
            raise SageMakerError(f"cannot delete {res.kind} {res.name}: {exc}") from exc
    return resources
