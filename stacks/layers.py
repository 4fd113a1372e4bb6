"""Managed Lambda layers (no Docker, no bundling): AWS SDK for pandas and Powertools for AWS Lambda (Python).

The layer version ARNs differ per region and release, so by default they are read at deploy time from the
public SSM parameters that both projects publish; synth stays offline (CloudFormation resolves an
``AWS::SSM::Parameter::Value<String>`` template parameter). An explicit ARN setting overrides each one.

* AWS SDK for pandas (numpy, pandas, pyarrow):
  ``/aws/service/aws-sdk-pandas/<release>/py3.<minor>/x86_64/layer-arn``
  (https://aws-sdk-pandas.readthedocs.io/en/stable/layers.html). Per-region table of ARNs: the same page;
  the account is 336392948345 in most regions, e.g. ``AWSSDKPandas-Python313:<n>``.
* Powertools v3: ``/aws/service/powertools/python/x86_64/python3.<minor>/<release|latest>``
  (https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/), account 017000801446,
  e.g. ``AWSLambdaPowertoolsPythonV3-python313-x86_64:<n>``.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

#: The runtime of every pipeline Lambda. aws-cdk-lib 2.275 also offers PYTHON_3_14, but the Powertools v3
#: layer's support for 3.14 is unverified (aws-facts.md section 6); 3.13 is supported by both layers.
RUNTIME = lambda_.Runtime.PYTHON_3_13
PYTHON_MINOR = "3.13"


def pandas_parameter_name(release: str, python: str = PYTHON_MINOR) -> str:
    """SSM public parameter holding the AWS SDK for pandas layer ARN for ``release`` (x86_64)."""
    return f"/aws/service/aws-sdk-pandas/{release}/py{python}/x86_64/layer-arn"


def powertools_parameter_name(release: str, python: str = PYTHON_MINOR) -> str:
    """SSM public parameter holding the Powertools v3 layer ARN (``release`` may be ``latest``)."""
    return f"/aws/service/powertools/python/x86_64/python{python}/{release}"


#: Why the layers may need explicit ARNs: a synth warning (the stack is environment-agnostic, so the
#: partition is only known at deploy time).
PARTITION_WARNING = (
    "The AWS SDK for pandas and Powertools layers are read from public SSM parameters, which their projects "
    "publish in the commercial AWS regions. In the aws-cn and aws-us-gov partitions, set pandas_layer_arn and "
    "powertools_layer_arn to layers you publish there, or the deploy fails on the missing parameters."
)


def managed_layers(
    scope: Construct, *, pandas_release: str, powertools_release: str, pandas_arn: str = "", powertools_arn: str = ""
) -> list[lambda_.ILayerVersion]:
    """The two managed layers ``[pandas, powertools]``, from explicit ARNs or from the SSM parameters."""
    if not pandas_arn:
        pandas_arn = ssm.StringParameter.value_for_string_parameter(scope, pandas_parameter_name(pandas_release))
    if not powertools_arn:
        powertools_arn = ssm.StringParameter.value_for_string_parameter(
            scope, powertools_parameter_name(powertools_release)
        )
    return [
        lambda_.LayerVersion.from_layer_version_arn(scope, "AwsSdkPandasLayer", pandas_arn),
        lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", powertools_arn),
    ]
