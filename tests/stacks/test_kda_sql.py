"""CDK assertions for ``streaming_engine=kda-sql`` (synth-only legacy engine): one synth for the module."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cdk-kda")
    _app, stack, template = synth(outdir, streaming_engine="kda-sql")
    return outdir, stack, template


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized[2]


@pytest.fixture(scope="module")
def application(template):
    (app,) = resources(template, "AWS::KinesisAnalytics::Application").items()
    return app


def test_sql_runs_rcf_with_explanation_with_the_blog_parameters(application):
    from clickstream_anomaly.kda import KdaRcfParameters, parse_application_sql
    from clickstream_anomaly.records import FEATURE_COLUMNS

    sql = application[1]["Properties"]["ApplicationCode"]
    assert "RANDOM_CUT_FOREST_WITH_EXPLANATION(" in sql
    columns, params = parse_application_sql(sql)
    assert params == KdaRcfParameters(100, 256, 4320, 1, True)
    assert set(FEATURE_COLUMNS) <= set(columns)
    assert '"SOURCE_SQL_STREAM_001"' in sql and '"DESTINATION_SQL_STREAM"' in sql


def test_input_reads_features_stream_as_json_windows(application, template):
    from clickstream_anomaly.records import FEATURE_COLUMNS

    (inp,) = application[1]["Properties"]["Inputs"]
    assert inp["NamePrefix"] == "SOURCE_SQL_STREAM"
    stream_ref = inp["KinesisStreamsInput"]["ResourceARN"]["Fn::GetAtt"][0]
    assert stream_ref.startswith("IngestFeatures")
    schema = inp["InputSchema"]
    assert schema["RecordFormat"]["RecordFormatType"] == "JSON"
    assert schema["RecordFormat"]["MappingParameters"]["JSONMappingParameters"]["RecordRowPath"] == "$"
    cols = {c["Name"]: (c["SqlType"], c["Mapping"]) for c in schema["RecordColumns"]}
    for name in FEATURE_COLUMNS:
        assert cols[name] == ("DOUBLE", f"$.{name}")
    assert cols["window_start"][1] == "$.window_start"


def test_application_waits_for_role_and_its_policy(application, template):
    depends = application[1]["DependsOn"]
    roles = resources(template, "AWS::IAM::Role")
    policies = resources(template, "AWS::IAM::Policy")
    role_arn = application[1]["Properties"]["Inputs"][0]["KinesisStreamsInput"]["RoleARN"]["Fn::GetAtt"][0]
    assert role_arn in depends and role_arn in roles
    policy = next(k for k, p in policies.items() if {"Ref": role_arn} in p["Properties"]["Roles"])
    assert policy in depends
    trust = roles[role_arn]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert trust == {"Service": "kinesisanalytics.amazonaws.com"}


def test_output_goes_to_alerter_lambda(template, application):
    alerter, _ = function_by_handler(template, "alerter")
    (out,) = resources(template, "AWS::KinesisAnalytics::ApplicationOutput").values()
    props = out["Properties"]
    assert props["ApplicationName"] == {"Ref": application[0]}
    assert props["Output"]["Name"] == "DESTINATION_SQL_STREAM"
    assert props["Output"]["DestinationSchema"]["RecordFormatType"] == "JSON"
    assert props["Output"]["LambdaOutput"]["ResourceARN"] == {"Fn::GetAtt": [alerter, "Arn"]}
    policies = resources(template, "AWS::IAM::Policy")
    role = props["Output"]["LambdaOutput"]["RoleARN"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in policies.values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    invoke = [s for s in statements if "lambda:InvokeFunction" in s["Action"]]
    assert invoke and invoke[0]["Resource"] == {"Fn::GetAtt": [alerter, "Arn"]}


def test_custom_resource_starts_the_application_after_its_output(template, application):
    (starter,) = resources(template, "Custom::AWS").values()
    create = starter["Properties"]["Create"]
    text = (
        create if isinstance(create, str) else "".join(p if isinstance(p, str) else "" for p in create["Fn::Join"][1])
    )
    assert '"action":"startApplication"' in text and '"InputStartingPosition":"NOW"' in text
    output_id = next(iter(resources(template, "AWS::KinesisAnalytics::ApplicationOutput")))
    assert output_id in starter["DependsOn"]


def test_detector_lambda_replaced_by_the_application(template):
    handlers = [r["Properties"].get("Handler") for r in resources(template, "AWS::Lambda::Function").values()]
    assert "lambdas.detector.app.handler" not in handlers
    assert "lambdas.alerter.app.handler" in handlers


def test_anomaly_alarm_watches_the_kda_detector(template):
    from clickstream_anomaly.streaming.detection import KDA_DETECTOR_NAME
    from stacks.alerting import ANOMALIES_METRIC
    from tests.stacks.cdk_synth import alarm_metric

    props = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    detectors = [m["dimensions"]["detector"] for m in map(alarm_metric, props) if m and m["name"] == ANOMALIES_METRIC]
    assert detectors == [KDA_DETECTOR_NAME]


def test_synth_warns_that_kda_sql_is_discontinued(synthesized):
    from aws_cdk.assertions import Annotations, Match

    Annotations.from_stack(synthesized[1]).has_warning(
        "/ClickstreamAnomaly", Match.string_like_regexp(".*2025-10-15.*streaming_engine=lambda.*")
    )


@pytest.mark.slow
def test_cfn_lint_no_errors(synthesized):
    findings = cfn_lint_findings(synthesized[0] / f"{STACK_NAME}.template.json")
    assert [f for f in findings if f[0] not in CFN_LINT_ACCEPTED] == []
