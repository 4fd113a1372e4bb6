"""CDK assertions with SageMaker endpoints on (plus retraining schedule, provisioned streams, alert e-mail):
one synth for the module."""

from __future__ import annotations

import json

import pytest

from tests.stacks.cdk_synth import (
    CFN_LINT_ACCEPTED,
    STACK_NAME,
    alarm_metric,
    cfn_lint_findings,
    function_by_handler,
    resources,
    state_machine_definition,
    synth,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SETTINGS = {
    "deploy_endpoints": True,
    "retrain_schedule": "rate(7 days)",
    "stream_mode": "provisioned",
    "stream_shards": 2,
    "alert_email": "ops@example.com",
    "endpoint_instance_type": "ml.c5.large",
}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cdk-endpoints")
    _app, stack, template = synth(outdir, **SETTINGS)
    return outdir, stack, template


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized[2]


def test_provisioned_streams(template):
    template.all_resources_properties(
        "AWS::Kinesis::Stream", {"ShardCount": 2, "StreamModeDetails": {"StreamMode": "PROVISIONED"}}
    )


def test_email_subscription(template):
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_scorer_reads_features_and_may_invoke_only_its_endpoints(template):
    logical, scorer = function_by_handler(template, "scorer")
    env = scorer["Properties"]["Environment"]["Variables"]
    assert env["RCF_ENDPOINT_NAME"] == "clickstream-rcf"
    assert env["DEEPAR_ENDPOINT_NAME"] == "clickstream-deepar"
    assert set(env) >= {"DETECTIONS_STREAM_NAME", "STATE_BUCKET"}
    mapping = [
        m["Properties"]
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": logical}
    ]
    assert len(mapping) == 1
    assert mapping[0]["EventSourceArn"]["Fn::GetAtt"][0].startswith("IngestFeatures")
    assert mapping[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    role = scorer["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    invoke = [s for s in statements if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert len(invoke) == 1
    arns = ["".join(x if isinstance(x, str) else "" for x in r["Fn::Join"][1]) for r in invoke[0]["Resource"]]
    assert sorted(a.rsplit(":", 1)[1] for a in arns) == ["endpoint/clickstream-deepar", "endpoint/clickstream-rcf"]
    # the scaling the RCF training data was written with: one object, read-only
    uri = "".join(x if isinstance(x, str) else "<bucket>" for x in env["RCF_SCALING_URI"]["Fn::Join"][1])
    assert uri == "s3://<bucket>/rcf/scaling.json"
    gets = [s for s in statements if s["Action"] == "s3:GetObject" and "rcf/scaling.json" in json.dumps(s["Resource"])]
    assert len(gets) == 1


@pytest.mark.parametrize("alg", ["Rcf", "Deepar"])
def test_pipeline_creates_or_updates_endpoint_and_waits_for_it(template, alg):
    asl = state_machine_definition(template, f"Models{alg}Pipeline")
    states = asl["States"]

    def by_resource(suffix):
        found = [name for name, s in states.items() if s.get("Resource", "").endswith(suffix)]
        assert len(found) >= 1, suffix
        return found

    (train,) = by_resource(":sagemaker:createTrainingJob.sync")
    (model,) = by_resource(":sagemaker:createModel")
    (config,) = by_resource(":sagemaker:createEndpointConfig")
    (create,) = by_resource(":sagemaker:createEndpoint")
    (update,) = by_resource(":sagemaker:updateEndpoint")
    find, describe = sorted(by_resource(":aws-sdk:sagemaker:describeEndpoint"), key=lambda n: "Find" not in n)
    assert states[train]["Next"] == model and states[model]["Next"] == config
    assert states[config]["Next"] == find
    # Endpoint lookup fails -> create; succeeds -> update.
    assert states[find]["Next"] == update
    assert states[find]["Catch"][0]["Next"] == create
    assert states[config]["Parameters"]["ProductionVariants"][0]["InstanceType"] == "ml.c5.large"
    # Both lead to a wait / describe / choice loop that ends in Succeed (InService) or Fail (Failed).
    wait = states[create]["Next"]
    assert states[update]["Next"] == wait and states[wait]["Type"] == "Wait"
    assert states[wait]["Next"] == describe
    assert states[describe]["ResultSelector"] == {"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"}
    expect = states[states[describe]["Next"]]
    assert expect["Type"] == "Pass" and expect["Parameters"]["expected.$"].startswith("States.Format(")
    choice = states[expect["Next"]]
    assert choice["Type"] == "Choice" and choice["Default"] == wait
    ready, rolled_back, failed = choice["Choices"]
    # InService on the config this run made: done; InService on another (a rolled-back update): fail
    assert ready["And"] == [
        {"Variable": "$.endpoint.status", "StringEquals": "InService"},
        {"Variable": "$.endpoint.config", "StringEqualsPath": "$.endpoint.expected"},
    ]
    assert states[ready["Next"]]["Type"] == "Succeed"
    assert rolled_back == {"Variable": "$.endpoint.status", "StringEquals": "InService", "Next": rolled_back["Next"]}
    assert (
        states[rolled_back["Next"]]["Type"] == "Fail" and states[rolled_back["Next"]]["Error"] == "EndpointNotUpdated"
    )
    assert failed["StringEquals"] == "Failed" and states[failed["Next"]]["Type"] == "Fail"


def test_retraining_schedule_starts_both_pipelines(template):
    rules = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression") == "rate(7 days)"
    ]
    assert len(rules) == 1
    targets = sorted(t["Arn"]["Ref"] for t in rules[0]["Targets"])
    assert targets == sorted(resources(template, "AWS::StepFunctions::StateMachine"))


def test_alarms_cover_the_streaming_detectors_and_both_endpoints(template):
    props = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    from clickstream_anomaly.records import BASELINE, PAGES
    from clickstream_anomaly.streaming.scoring import DEEPAR_DETECTOR, RCF_DETECTOR
    from stacks.alerting import ANOMALIES_METRIC

    detectors = sorted(
        m["dimensions"]["detector"] for m in map(alarm_metric, props) if m and m["name"] == ANOMALIES_METRIC
    )
    assert detectors == sorted([BASELINE, PAGES, RCF_DETECTOR, DEEPAR_DETECTOR])
    endpoint_alarms = [
        p
        for p in props
        if any(
            m.get("MetricStat", {}).get("Metric", {}).get("Namespace") == "AWS/SageMaker" for m in p.get("Metrics", [])
        )
    ]
    watched = sorted(
        {
            m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
            for p in endpoint_alarms
            for m in p["Metrics"]
            if "MetricStat" in m
        }
    )
    assert watched == ["clickstream-deepar", "clickstream-rcf"]
    names = [m["name"] for m in map(alarm_metric, props) if m]
    assert names.count("IteratorAge") == 4  # aggregator, detector, alerter, scorer


@pytest.mark.slow
def test_cfn_lint_no_errors(synthesized):
    findings = cfn_lint_findings(synthesized[0] / f"{STACK_NAME}.template.json")
    assert [f for f in findings if f[0] not in CFN_LINT_ACCEPTED] == []
