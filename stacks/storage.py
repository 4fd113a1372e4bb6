"""S3 buckets with the project's defaults (encrypted, private, SSL-only, access-logged) and the shared ones.

:class:`Storage` holds the server-access-log bucket and the ``state`` bucket that the aggregator, detector,
scorer and alerter keep their state in; other constructs build their buckets with :func:`secure_bucket`.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct


def secure_bucket(
    scope: Construct,
    id_: str,
    *,
    access_logs: s3.IBucket | None,
    removal_policy: RemovalPolicy,
    log_prefix: str = "",
    versioned: bool = False,
) -> s3.Bucket:
    """An S3-managed-key encrypted, private, SSL-only bucket whose access logs go to ``access_logs``.

    With ``RemovalPolicy.DESTROY`` the bucket is emptied on delete (CDK's auto-delete custom resource).
    """
    destroy = removal_policy == RemovalPolicy.DESTROY
    return s3.Bucket(
        scope,
        id_,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=versioned,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=(log_prefix or f"{id_.lower()}/") if access_logs is not None else None,
        removal_policy=removal_policy,
        auto_delete_objects=destroy,
    )


class Storage(Construct):
    """The access-log bucket and the pipeline state bucket.

    Attributes
    ----------
    access_logs : s3.Bucket
        Receives the server access logs of every other bucket (expires after 90 days).
    state : s3.Bucket
        Versioned; detector model state (``detector/state.bin``), aggregator windows, alerter history.
    """

    def __init__(self, scope: Construct, id_: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id_)
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        self.state = secure_bucket(
            self,
            "State",
            access_logs=self.access_logs,
            removal_policy=removal_policy,
            log_prefix="state/",
            versioned=True,
        )
        self.state.add_lifecycle_rule(noncurrent_version_expiration=Duration.days(7))


def grant_prefix(
    bucket: s3.IBucket,
    grantee: iam.IGrantable,
    prefix: str,
    *,
    read: bool = True,
    write: bool = True,
    state: bool = False,
) -> None:
    """Least-privilege object access under ``prefix`` (``"detector/"``): Get/Put on its objects and
    ListBucket limited to it. Acknowledges the one wildcard this needs (the prefix's objects).

    ``state``: the role reads a state object that may not exist yet. A ``GetObject`` request carries no
    ``s3:prefix``, so a ListBucket limited by that condition does not apply to it and S3 answers a missing
    key with 403 (AccessDenied), not 404 (NoSuchKey): every first run would fail. A state role therefore
    gets ListBucket on the whole bucket (it holds only the components' state objects) and no condition."""
    actions = (["s3:GetObject"] if read else []) + (["s3:PutObject"] if write else [])
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(f"{prefix}*")])
    )
    if read:
        conditions = None if state else {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn], conditions=conditions)
        )
    from stacks.nag import arn_ref, wildcard_resource

    wildcard_resource(
        grantee if isinstance(grantee, Construct) else bucket,
        f"{arn_ref(bucket)}/{prefix}*",
        f"object access is limited to the {prefix} prefix this role owns",
    )
