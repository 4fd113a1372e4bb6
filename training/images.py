"""Built-in algorithm images (ECR URIs) per region for ``randomcutforest`` and ``forecasting-deepar``.

A documented table covers the regions below; it is what :func:`image_uri` uses first, so no SageMaker SDK
import (about 3 s) is needed on the common path. Source: the registry-path pages of the SageMaker developer
guide and ``sagemaker-core``'s ``image_uri_config/{randomcutforest,forecasting-deepar}.json``
(../shared/reference/aws-facts.md sections 2-3); ``tests/test_sagemaker_images.py`` checks the table against
``sagemaker.core.image_uris.retrieve``, which works offline. For any other region :func:`image_uri` falls
back to ``sagemaker.core.image_uris.retrieve`` when the SDK is installed.
Tag ``:1`` as the docs advise (not ``:latest``).
"""

from __future__ import annotations

from clickstream_anomaly.sagemaker_config import SageMakerConfigError, validate_region

from .tags import BUILTIN, check_algorithm

IMAGE_TAG = "1"

#: ECR registry account per region, per built-in algorithm.
REGISTRY_ACCOUNTS: dict[str, dict[str, str]] = {
    "randomcutforest": {
        "us-east-1": "382416733822",
        "us-east-2": "404615174143",
        "us-west-2": "174872318107",
        "eu-west-1": "438346466558",
        "eu-central-1": "664544806723",
        "ap-southeast-2": "712309505854",
    },
    "forecasting-deepar": {
        "us-east-1": "522234722520",
        "us-east-2": "566113047672",
        "us-west-2": "156387875391",
        "eu-west-1": "224300973850",
        "eu-central-1": "495149712605",
        "ap-southeast-2": "514117268639",
    },
}


def table_image_uri(algorithm: str, region: str) -> str | None:
    """The image URI from the table, or ``None`` when the region is not in it."""
    repo = BUILTIN[check_algorithm(algorithm)]
    account = REGISTRY_ACCOUNTS[repo].get(validate_region(region))
    if account is None:
        return None
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{repo}:{IMAGE_TAG}"


def image_uri(algorithm: str, region: str) -> str:
    """The training/inference image of ``algorithm`` (``rcf`` or ``deepar``) in ``region``."""
    uri = table_image_uri(algorithm, region)
    if uri is not None:
        return uri
    repo = BUILTIN[algorithm]
    try:
        from sagemaker.core import image_uris
    except ImportError:
        known = sorted(REGISTRY_ACCOUNTS[repo])
        raise SageMakerConfigError(
            f"no {repo} image known for {region} (table covers {known}); install the "
            "sagemaker SDK to look other regions up"
        ) from None
    try:
        return image_uris.retrieve(repo, region)
    except ValueError as exc:
        raise SageMakerConfigError(f"no {repo} image for region {region}: {exc}") from exc
