"""Registry accounts of the SageMaker built-in algorithm images (Random Cut Forest and DeepAR), per region.

Data from the SageMaker Python SDK's image URI tables
(``sagemaker/core/image_uri_config/randomcutforest.json`` and ``forecasting-deepar.json``, sagemaker
3.27.0), ISO partitions left out. The image URI is
``<account>.dkr.ecr.<region>.<url suffix>/<repository>:1``; :func:`image_uri` resolves it at deploy time
through a CloudFormation mapping, so the stack can stay region-agnostic.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Fn
from constructs import Construct

RCF_REGISTRIES: dict[str, str] = {
    "af-south-1": "455444449433",
    "ap-east-1": "286214385809",
    "ap-northeast-1": "351501993468",
    "ap-northeast-2": "835164637446",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "991648021394",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "712309505854",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "469771592824",
    "ca-west-1": "190319476487",
    "cn-north-1": "390948362332",
    "cn-northwest-1": "387376663083",
    "eu-central-1": "664544806723",
    "eu-central-2": "680994064768",
    "eu-north-1": "669576153137",
    "eu-south-1": "257386234256",
    "eu-south-2": "104374241257",
    "eu-west-1": "438346466558",
    "eu-west-2": "644912444149",
    "eu-west-3": "749696950732",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "249704162688",
    "sa-east-1": "855470959533",
    "us-east-1": "382416733822",
    "us-east-2": "404615174143",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "226302683700",
    "us-west-1": "632365934929",
    "us-west-2": "174872318107",
}
DEEPAR_REGISTRIES: dict[str, str] = {
    "af-south-1": "455444449433",
    "ap-east-1": "286214385809",
    "ap-northeast-1": "633353088612",
    "ap-northeast-2": "204372634319",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "991648021394",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "514117268639",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "469771592824",
    "ca-west-1": "190319476487",
    "cn-north-1": "390948362332",
    "cn-northwest-1": "387376663083",
    "eu-central-1": "495149712605",
    "eu-central-2": "680994064768",
    "eu-north-1": "669576153137",
    "eu-south-1": "257386234256",
    "eu-south-2": "104374241257",
    "eu-west-1": "224300973850",
    "eu-west-2": "644912444149",
    "eu-west-3": "749696950732",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "249704162688",
    "sa-east-1": "855470959533",
    "us-east-1": "522234722520",
    "us-east-2": "566113047672",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "226302683700",
    "us-west-1": "632365934929",
    "us-west-2": "156387875391",
}

ALGORITHMS: dict[str, tuple[str, dict[str, str]]] = {
    "rcf": ("randomcutforest", RCF_REGISTRIES),
    "deepar": ("forecasting-deepar", DEEPAR_REGISTRIES),
}


def image_uri(scope: Construct, algorithm: str) -> str:
    """Deploy-time image URI of a built-in ``algorithm`` (``rcf`` or ``deepar``) in the stack's region."""
    repository, registries = ALGORITHMS[algorithm]
    mapping = CfnMapping(
        scope,
        f"{algorithm.capitalize()}ImageAccounts",
        mapping={region: {"account": account} for region, account in registries.items()},
    )
    account = mapping.find_in_map(Aws.REGION, "account")
    return Fn.join("", [account, ".dkr.ecr.", Aws.REGION, ".", Aws.URL_SUFFIX, f"/{repository}:1"])
