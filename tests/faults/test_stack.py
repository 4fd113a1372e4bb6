"""Deploy-time faults found by reading the synthesized template (issue #14): one synth for the module."""

from __future__ import annotations

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
