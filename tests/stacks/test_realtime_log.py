"""CDK assertions with CloudFront real-time logs on the clicks stream (``clicks_format=cloudfront-realtime``,
``cloudfront_realtime_log=true``) and access logs in the landing bucket: one synth for the module."""

from __future__ import annotations

import json

import pytest

from tests.stacks.cdk_synth import (
    CFN_LINT_ACCEPTED,
    STACK_NAME,
    cfn_lint_findings,
    function_by_handler,
    resources,
    synth,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
FIELDS = "timestamp,c-ip,sc-status,cs-method,cs-uri-stem,cs-user-agent,cs-cookie,cs-referer"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cdk-realtime")
    _app, stack, template = synth(
        outdir,
        clicks_format="cloudfront-realtime",
        cloudfront_realtime_log=True,
        realtime_log_fields=FIELDS,
        realtime_log_sampling_rate=25,
        landing_format="auto",
        source_settings={"user_cookie": "session-id", "collapse_ids": True},
    )
    return outdir, stack, template


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized[2]


def _clicks_stream(template) -> str:
    streams = resources(template, "AWS::Kinesis::Stream")
    (clicks,) = [k for k in streams if k.startswith("IngestClicks")]
    return clicks


def test_realtime_log_config_writes_the_configured_fields_to_the_clicks_stream(template):
    configs = resources(template, "AWS::CloudFront::RealtimeLogConfig")
    assert len(configs) == 1
    props = next(iter(configs.values()))["Properties"]
    assert props["Fields"] == FIELDS.split(",")
    assert props["SamplingRate"] == 25
    (endpoint,) = props["EndPoints"]
    assert endpoint["StreamType"] == "Kinesis"
    assert endpoint["KinesisStreamConfig"]["StreamArn"] == {"Fn::GetAtt": [_clicks_stream(template), "Arn"]}


def test_cloudfront_role_may_only_put_records_to_the_clicks_stream(template):
    configs = resources(template, "AWS::CloudFront::RealtimeLogConfig")
    role_id = next(iter(configs.values()))["Properties"]["EndPoints"][0]["KinesisStreamConfig"]["RoleArn"][
        "Fn::GetAtt"
    ][0]
    role = resources(template, "AWS::IAM::Role")[role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudfront.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert "ManagedPolicyArns" not in role
    policies = [
        p for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    # The CloudFront Developer Guide's list for a Kinesis endpoint; the stream's aws/kinesis key needs no grant.
    (statement,) = statements
    assert sorted(statement["Action"]) == [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:PutRecord",
        "kinesis:PutRecords",
    ]
    assert statement["Effect"] == "Allow" and "Condition" not in statement
    assert statement["Resource"] == {"Fn::GetAtt": [_clicks_stream(template), "Arn"]}


def test_a_stream_with_its_own_key_gets_generate_data_key_on_that_key_only():
    import aws_cdk as cdk
    from aws_cdk import aws_kinesis as kinesis
    from aws_cdk.assertions import Template

    from stacks.traffic import RealtimeLog

    stack = cdk.Stack(cdk.App(), "Cmk")
    stream = kinesis.Stream(stack, "Clicks", encryption=kinesis.StreamEncryption.KMS)
    RealtimeLog(stack, "Log", stream=stream, fields=["timestamp", "cs-uri-stem"], sampling_rate=100)
    statements = [
        s
        for p in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    kms = [s for s in statements if str(s["Action"]).startswith("kms")]
    key = next(k for k in Template.from_stack(stack).find_resources("AWS::KMS::Key"))
    assert kms == [{"Action": "kms:GenerateDataKey", "Effect": "Allow", "Resource": {"Fn::GetAtt": [key, "Arn"]}}]


def test_both_functions_read_the_format_the_rules_and_the_salt_secret(template):
    (secret_id,) = resources(template, "AWS::SecretsManager::Secret")
    agg = function_by_handler(template, "aggregator")[1]["Properties"]["Environment"]["Variables"]
    prod = function_by_handler(template, "producer")[1]["Properties"]["Environment"]["Variables"]
    assert agg["CLICKS_FORMAT"] == "cloudfront-realtime" and prod["LANDING_FORMAT"] == "auto"
    for env in (agg, prod):
        assert env["USER_SALT_SECRET_ARN"] == {"Ref": secret_id}
        assert json.loads(env["SOURCE_SETTINGS"]) == {
            "collapse_ids": True,
            "realtime_fields": FIELDS.split(","),
            "sampling_rate": 25,
            "user_cookie": "session-id",
        }
        assert "salt" not in env["SOURCE_SETTINGS"]  # the salt itself is never in the template
    readers = [
        p["Properties"]["Roles"]
        for p in resources(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Resource") == {"Ref": secret_id}
    ]
    assert len(readers) == 2  # the producer's and the aggregator's roles, nobody else


def test_raw_records_are_not_copied_to_the_lake(template):
    streams = resources(template, "AWS::KinesisFirehose::DeliveryStream")
    assert len(streams) == 1
    (only,) = streams.values()
    prefix = only["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"]
    assert prefix.startswith("features/")


def test_outputs_the_config_arn_and_the_salt_secret(template):
    outputs = template.find_outputs("*")
    (config_id,) = resources(template, "AWS::CloudFront::RealtimeLogConfig")
    assert outputs["RealtimeLogConfigArn"]["Value"] == {"Fn::GetAtt": [config_id, "Arn"]}
    assert "cache behaviours" in outputs["RealtimeLogConfigArn"]["Description"]
    assert "CLICKSTREAM_USER_SALT" in outputs["UserSaltSecret"]["Description"]


def test_cfn_lint_no_errors(synthesized):
    findings = cfn_lint_findings(synthesized[0] / f"{STACK_NAME}.template.json")
    assert [f for f in findings if f[0] not in CFN_LINT_ACCEPTED] == []


def test_an_existing_salt_secret_is_used_as_given():
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.traffic import user_salt_secret

    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:clickstream/salt-AbCdEf"
    stack = cdk.Stack(cdk.App(), "Imported")
    secret = user_salt_secret(stack, "Salt", secret_arn=arn, removal_policy=cdk.RemovalPolicy.RETAIN)
    assert stack.resolve(secret.secret_arn) == arn
    Template.from_stack(stack).resource_count_is("AWS::SecretsManager::Secret", 0)


def test_a_distribution_in_the_same_app_attaches_the_configuration(tmp_path):
    """The docs' example: a Distribution in another stack of the app names the stack's configuration."""
    import aws_cdk as cdk
    from aws_cdk import aws_cloudfront as cloudfront
    from aws_cdk import aws_cloudfront_origins as origins
    from aws_cdk.assertions import Template

    from app import build_app
    from tests.stacks.cdk_synth import context

    app = cdk.App(
        context=context(clicks_format="cloudfront-realtime", cloudfront_realtime_log=True), outdir=str(tmp_path)
    )
    _, pipeline = build_app(app, nag=False)
    assert pipeline.realtime_log is not None
    site = cdk.Stack(app, "Site")
    cloudfront.Distribution(
        site,
        "Web",
        default_behavior=cloudfront.BehaviorOptions(
            origin=origins.HttpOrigin("origin.example.com"),
            realtime_log_config=pipeline.realtime_log.config,
        ),
    )
    (dist,) = Template.from_stack(site).find_resources("AWS::CloudFront::Distribution").values()
    arn = dist["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]["RealtimeLogConfigArn"]
    # the pipeline stack's configuration, read across stacks (weak references: cdk.json's
    # @aws-cdk/core:defaultCrossStackReferences)
    ref = arn["Fn::GetStackOutput"]
    assert ref["StackName"] == "ClickstreamAnomaly" and "RealtimeLogConfig" in ref["OutputName"]
