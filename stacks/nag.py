"""cdk-nag 3 acknowledgements: one helper per kind of finding, each with its specific reason.

cdk-nag 3 reads CDK's native acknowledgements (``Validations.of(scope).acknowledge``), which cover the scope
and its children. IAM4/IAM5 findings are acknowledged one by one with their bracketed detail, e.g.
``AwsSolutions-IAM5[Resource::<StorageState1234.Arn>/detector/*]``, so a new wildcard is still reported.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, CfnResource, Stack, Validations
from constructs import IConstruct

BASIC_EXECUTION_ROLE = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``rule`` (a cdk-nag rule id, with its bracketed detail when it has one) on ``scope``.

    AwsSolutions rules get the plugin prefix (``AwsSolutions::AwsSolutions-L1``), as cdk-nag 3 prints them;
    other ids (``CloudFormation-Validate::W7001``) are used as given.
    """
    if rule.startswith("AwsSolutions-"):
        rule = f"AwsSolutions::{rule}"
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def arn_ref(resource: IConstruct) -> str:
    """How cdk-nag prints the ``Arn`` attribute of ``resource`` (an L2 or its L1) in a finding."""
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    if not isinstance(cfn, CfnElement):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to name")
    stack = Stack.of(resource)
    return f"<{stack.resolve(stack.get_logical_id(cfn))}.Arn>"


def wildcard_resource(scope: IConstruct, resource_text: str, reason: str) -> None:
    """Acknowledge the IAM5 finding for one wildcard resource string as cdk-nag prints it."""
    acknowledge(scope, f"AwsSolutions-IAM5[Resource::{resource_text}]", reason)


def wildcard_actions(scope: IConstruct, actions: list[str], reason: str) -> None:
    """Acknowledge the IAM5 findings for wildcard ``actions`` (e.g. ``s3:GetObject*``)."""
    for action in actions:
        acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]", reason)


def lambda_basics(function: IConstruct) -> None:
    """The two findings every pipeline Lambda has, with why they are accepted."""
    acknowledge(
        function,
        BASIC_EXECUTION_ROLE,
        "AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch Logs",
    )
    acknowledge(
        function,
        "AwsSolutions-L1",
        "Python 3.13 is the newest runtime for which both managed layers (AWS SDK for pandas and "
        "Powertools v3) are documented; Python 3.14 support of the Powertools layer is unverified",
    )
