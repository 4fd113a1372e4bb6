"""Built-in algorithm images (ECR URIs) per region for ``randomcutforest`` and ``forecasting-deepar``.

The one image table of the project is ``images.json`` beside this module, generated from the SageMaker
SDK's offline tables by ``scripts/generate_image_table.py`` (a test checks it is current). The boto3
workflows read it here; the CDK app renders the same table as a CloudFormation mapping
(:mod:`stacks.images`). Tag ``:1`` as the SageMaker docs advise (not ``:latest``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from clickstream_anomaly.sagemaker_config import SageMakerConfigError, validate_region

from .tags import BUILTIN, check_algorithm

IMAGE_TAG = "1"


@cache
def registry_accounts() -> dict[str, dict[str, str]]:
    """``{repository: {region: registry account}}`` from ``images.json``."""
    text = resources.files(__package__).joinpath("images.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def url_suffix(region: str) -> str:
    """The ECR host suffix of ``region``'s partition."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def table_image_uri(algorithm: str, region: str) -> str | None:
    """The image URI from the table, or ``None`` when the region is not in it."""
    repo = BUILTIN[check_algorithm(algorithm)]
    account = registry_accounts()[repo].get(validate_region(region))
    if account is None:
        return None
    return f"{account}.dkr.ecr.{region}.{url_suffix(region)}/{repo}:{IMAGE_TAG}"


def image_uri(algorithm: str, region: str) -> str:
    """The training/inference image of ``algorithm`` (``rcf`` or ``deepar``) in ``region``.

    Raises ``SageMakerConfigError`` for a region the table does not cover.
    """
    uri = table_image_uri(algorithm, region)
    if uri is None:
        repo = BUILTIN[algorithm]
        known = ", ".join(sorted(registry_accounts()[repo]))
        raise SageMakerConfigError(f"no {repo} image known for {region}; the table covers {known}")
    return uri


REGISTRY_ACCOUNTS = registry_accounts()
