"""Deploy-time faults found by reading the synthesized template (issue #14): one synth for the module."""

from __future__ import annotations

import json

import pytest

from tests.stacks.cdk_synth import function_by_handler, resources, synth

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("cdk-faults"))[2]


def policy_statements(template, function: str) -> list[dict]:
    """Every IAM statement attached to the role of ``lambdas.<function>``."""
    _, fn = function_by_handler(template, function)
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    out: list[dict] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def actions(statement: dict) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


@pytest.fixture(scope="module")
def with_endpoints(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("cdk-faults-endpoints"), deploy_endpoints=True)[2]


def test_the_scorer_can_send_event_time_rejections_to_its_failure_queue(with_endpoints):
    test_each_stateful_function_can_send_its_rejections_to_its_failure_queue(with_endpoints, "scorer")


@pytest.mark.parametrize("function", ["aggregator", "detector", "alerter"])
def test_each_stateful_function_can_send_its_rejections_to_its_failure_queue(template, function):
    """Problem 3: rejected records go to the failure queue whose alarm fires (FAILURE_QUEUE_URL)."""
    _, fn = function_by_handler(template, function)
    url = fn["Properties"]["Environment"]["Variables"]["FAILURE_QUEUE_URL"]
    queue = url["Ref"]
    assert resources(template, "AWS::SQS::Queue")[queue]
    sends = [
        s
        for s in policy_statements(template, function)
        if "sqs:SendMessage" in actions(s) and s["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    ]
    assert sends


@pytest.mark.parametrize("function", ["aggregator", "detector", "alerter"])
def test_a_corrupt_state_object_raises_an_alarm(template, function):
    """Problem 6: the CorruptState metric the handlers emit has an alarm that notifies the topic."""
    alarms = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "CorruptState"
        and {"Name": "service", "Value": function} in a["Properties"].get("Dimensions", [])
    ]
    (alarm,) = alarms
    assert alarm["Namespace"] == "ClickstreamAnomaly" and alarm["Threshold"] == 1
    assert alarm["AlarmActions"] and "clickstream-anomaly state check|reset" in alarm["AlarmDescription"]


def from_our_alarms(statement: dict) -> bool:
    cond = statement.get("Condition", {})
    source_arn = json.dumps(cond.get("ArnLike", {}).get("aws:SourceArn"))
    return (
        cond.get("StringEquals", {}).get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}
        and ":cloudwatch:" in source_arn
        and ":alarm:*" in source_arn
    )


def test_cloudwatch_alarms_may_publish_to_the_ssl_only_topic(template):
    """Problem 7. Before: the topic policy enforce_ssl makes held only its Deny, so alarm actions failed."""
    (policy,) = resources(template, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [
        s
        for s in statements
        if s["Effect"] == "Allow"
        and s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and "sns:Publish" in actions(s)
    ]
    assert len(allows) == 1 and from_our_alarms(allows[0])
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in statements)  # still SSL-only


def test_the_topic_keys_cloudwatch_grant_is_limited_to_this_accounts_alarms(template):
    """Problem 7: the same aws:SourceAccount / aws:SourceArn conditions on the KMS key's CloudWatch grant."""
    (key,) = resources(template, "AWS::KMS::Key").values()
    grants = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert grants and all(from_our_alarms(s) for s in grants)


@pytest.mark.parametrize("function", ["aggregator", "detector", "alerter"])
def test_a_missing_state_object_reads_as_404_on_the_first_run(template, function):
    """Problem 8. Before: s3:ListBucket only with an s3:prefix condition, which a GetObject request does not
    carry, so a missing state object would read as 403 and the very first invocation would fail."""
    state_bucket = function_by_handler(template, function)[1]["Properties"]["Environment"]["Variables"]["STATE_BUCKET"]
    lists = [s for s in policy_statements(template, function) if "s3:ListBucket" in actions(s)]
    on_state = [s for s in lists if json.dumps(state_bucket["Ref"]) in json.dumps(s["Resource"])]
    assert on_state and all("Condition" not in s for s in on_state)


def test_the_firehose_delivery_roles_can_never_delete_lake_objects(template):
    """Problem 12. Before: CDK's grantReadWrite gave the delivery roles s3:DeleteObject* on the lake."""
    roles = [
        k
        for k, r in resources(template, "AWS::IAM::Role").items()
        if "firehose.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
        and "S3DestinationRole" in k
    ]
    assert len(roles) == 2
    for role in roles:
        statements = [
            s
            for p in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        allowed_deletes = [s for s in statements if s["Effect"] == "Allow" and any("Delete" in a for a in actions(s))]
        denied = [s for s in statements if s["Effect"] == "Deny" and "s3:DeleteObject*" in actions(s)]
        assert denied, f"{role} may delete lake objects"
        for allow in allowed_deletes:  # every allowed delete is on a resource the Deny covers
            assert all(r in [d["Resource"] for d in denied] for r in allow["Resource"] if "/*" in json.dumps(r))
