"""Deploy-time image URIs of the SageMaker built-in algorithms (Random Cut Forest and DeepAR).

The registry accounts come from the project's one image table
(:func:`clickstream_anomaly.aws.training.images.registry_accounts`); :func:`image_uri` resolves the
account through a CloudFormation mapping, so the stack stays region-agnostic. The image URI is
``<account>.dkr.ecr.<region>.<url suffix>/<repository>:1``.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Fn
from constructs import Construct

from clickstream_anomaly.aws.training.images import IMAGE_TAG, registry_accounts
from clickstream_anomaly.aws.training.tags import BUILTIN


def image_uri(scope: Construct, algorithm: str) -> str:
    """Deploy-time image URI of a built-in ``algorithm`` (``rcf`` or ``deepar``) in the stack's region."""
    repository = BUILTIN[algorithm]
    mapping = CfnMapping(
        scope,
        f"{algorithm.capitalize()}ImageAccounts",
        mapping={region: {"account": account} for region, account in registry_accounts()[repository].items()},
    )
    account = mapping.find_in_map(Aws.REGION, "account")
    return Fn.join("", [account, ".dkr.ecr.", Aws.REGION, ".", Aws.URL_SUFFIX, f"/{repository}:{IMAGE_TAG}"])
