"""Real traffic into the pipeline: the CloudFront real-time log configuration on the clicks stream, and the
user-hash salt that every function reading logs shares (docs/sources.md, "Connect your traffic").

``CloudFront distribution --(cache behaviours' RealtimeLogConfigArn)--> real-time log config --> clicks stream``
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.nag import acknowledge


def user_salt_secret(
    scope: Construct, id_: str, *, secret_arn: str, removal_policy: RemovalPolicy
) -> secretsmanager.ISecret:
    """The secret holding the user hash's salt: the one named by ``secret_arn`` (complete ARN), else a
    new secret with a generated 32-character value (not rotated: a new salt changes every user id)."""
    if secret_arn:
        return secretsmanager.Secret.from_secret_complete_arn(scope, id_, secret_arn)
    secret = secretsmanager.Secret(
        scope,
        id_,
        description="Salt of the clickstream user hash (client IP + user agent, cookie values); share it with "
        "every producer as CLICKSTREAM_USER_SALT",
        generate_secret_string=secretsmanager.SecretStringGenerator(password_length=32, exclude_punctuation=True),
        removal_policy=removal_policy,
    )
    acknowledge(
        secret,
        "AwsSolutions-SMG4",
        "the salt keys the user pseudonyms: rotating it changes every user id at once (a step in the users "
        "feature), so it is changed by hand, at a quiet hour, together with the producers' copies",
    )
    return secret


class RealtimeLog(Construct):
    """A CloudFront real-time log configuration writing to ``stream``, with the role CloudFront assumes.

    The role (trusted by ``cloudfront.amazonaws.com`` only) may describe the one stream and put records to
    it (``kinesis:DescribeStreamSummary``, ``DescribeStream``, ``PutRecord``, ``PutRecords``, as the
    CloudFront Developer Guide lists), plus ``kms:GenerateDataKey`` on the stream's key when it has a
    customer managed one (the AWS managed ``aws/kinesis`` key needs no grant).

    Attributes
    ----------
    config : cloudfront.RealtimeLogConfig
    role : iam.Role
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        stream: kinesis.IStream,
        fields: Sequence[str],
        sampling_rate: int,
    ) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "CloudFrontRole",
            assumed_by=iam.ServicePrincipal("cloudfront.amazonaws.com"),
            description="CloudFront real-time logs: put records to the clicks stream",
        )
        self.config = cloudfront.RealtimeLogConfig(
            self,
            "Config",
            end_points=[cloudfront.Endpoint.from_kinesis_stream(stream, self.role)],
            fields=list(fields),
            sampling_rate=sampling_rate,
        )
