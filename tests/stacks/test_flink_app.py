"""CDK assertions, cfn-lint and cdk-nag for ``streaming_engine=flink`` (Managed Service for Apache Flink): one
synth of the whole app for the module, with non-default Flink settings and a small stand-in zip (the real one
is built by ``make flink-zip``); one bare-stack synth for customer-managed stream keys."""

from __future__ import annotations

import json
import zipfile

import pytest

from tests.stacks.cdk_synth import (
    CFN_LINT_ACCEPTED,
    STACK_NAME,
    alarm_metric,
    cfn_lint_findings,
    context,
    resources,
    synth,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FLINK = {
    "streaming_engine": "flink",
    "flink_parallelism": 4,
    "flink_parallelism_per_kpu": 2,
    "flink_autoscaling": "true",
    "flink_checkpoint_interval_ms": 30000,
    "flink_min_pause_ms": 2000,
    "flink_max_lag_ms": 120000,
    "log_retention_days": 14,
    "streaming_detectors": "baseline,rcf-streaming",
    "timezone": "Europe/Paris",
    "allowed_lateness": "20min",
}
PARTITION, REGION, ACCOUNT = ({"Ref": f"AWS::{n}"} for n in ("Partition", "Region", "AccountId"))


def stand_in_zip(folder):
    path = folder / "clickstream-flink.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("main.py", "from clickstream_job import msf\n\nmsf.main()\n")
        z.writestr("lib/clickstream-flink-connectors.jar", b"not a jar")
    return path


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    zip_path = stand_in_zip(tmp_path_factory.mktemp("flink-zip"))
    outdir = tmp_path_factory.mktemp("cdk-flink")
    app, stack, template = synth(outdir, nag=True, flink_application_zip=str(zip_path), **FLINK)
    app.synth()  # runs the cdk-nag AwsSolutions checks; raises on an unacknowledged finding
    return outdir, stack, template, zip_path


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized[2]


@pytest.fixture(scope="module")
def ids(template):
    """Logical ids: the three streams, the application, its log group and stream, the alert topic."""

    def one(type_, prefix):
        (found,) = [k for k in resources(template, type_) if k.startswith(prefix)]
        return found

    return {
        "clicks": one("AWS::Kinesis::Stream", "IngestClicks"),
        "features": one("AWS::Kinesis::Stream", "IngestFeatures"),
        "detections": one("AWS::Kinesis::Stream", "IngestDetections"),
        "application": one("AWS::KinesisAnalyticsV2::Application", "Flink"),
        "logs": one("AWS::Logs::LogGroup", "FlinkLogs"),
        "log_stream": one("AWS::Logs::LogStream", "FlinkLogStream"),
        "topic": one("AWS::SNS::Topic", "AlertingAlerts"),
        "role": one("AWS::IAM::Role", "FlinkRole"),
    }


@pytest.fixture(scope="module")
def app_props(template, ids):
    return resources(template, "AWS::KinesisAnalyticsV2::Application")[ids["application"]]["Properties"]


def _log_arn(*tail):
    """A log ARN as CloudFormation holds it (adjacent literals joined into one string)."""
    parts: list = []
    for part in ["arn:", PARTITION, ":logs:", REGION, ":", ACCOUNT, ":log-group:", *tail]:
        if isinstance(part, str) and parts and isinstance(parts[-1], str):
            parts[-1] += part
        else:
            parts.append(part)
    return {"Fn::Join": ["", parts]}


def test_application_runs_the_zip_on_flink_1_20_with_the_settings(app_props, synthesized):
    assert app_props["RuntimeEnvironment"] == "FLINK-1_20"
    config = app_props["ApplicationConfiguration"]
    code = config["ApplicationCodeConfiguration"]
    assert code["CodeContentType"] == "ZIPFILE"
    location = code["CodeContent"]["S3ContentLocation"]
    assert location["FileKey"].endswith(".zip")
    # The asset is the zip itself, byte for byte (a file asset, not a re-zipped folder).
    outdir, zip_path = synthesized[0], synthesized[3]
    manifest = json.loads((outdir / f"{STACK_NAME}.assets.json").read_text())
    (entry,) = [
        a
        for a in manifest["files"].values()
        if any(d["objectKey"] == location["FileKey"] for d in a["destinations"].values())
    ]
    assert entry["source"]["packaging"] == "file"
    assert (outdir / entry["source"]["path"]).read_bytes() == zip_path.read_bytes()

    flink = config["FlinkApplicationConfiguration"]
    assert flink["CheckpointConfiguration"] == {
        "ConfigurationType": "CUSTOM",
        "CheckpointingEnabled": True,
        "CheckpointInterval": 30000,
        "MinPauseBetweenCheckpoints": 2000,
    }
    assert flink["ParallelismConfiguration"] == {
        "ConfigurationType": "CUSTOM",
        "Parallelism": 4,
        "ParallelismPerKPU": 2,
        "AutoScalingEnabled": True,
    }
    assert flink["MonitoringConfiguration"]["MetricsLevel"] == "APPLICATION"
    assert config["ApplicationSnapshotConfiguration"] == {"SnapshotsEnabled": True}
    restore = app_props["RunConfiguration"]["ApplicationRestoreConfiguration"]
    assert restore == {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"}


def test_property_groups_are_the_contract(app_props, ids):
    from clickstream_anomaly.sources import DEFAULT_REALTIME_FIELDS

    groups = {
        g["PropertyGroupId"]: g["PropertyMap"]
        for g in app_props["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]
    }

    def stream(key):
        return {"stream.name": {"Ref": ids[key]}, "stream.arn": {"Fn::GetAtt": [ids[key], "Arn"]}, "aws.region": REGION}

    source = {"realtime_fields": list(DEFAULT_REALTIME_FIELDS), "sampling_rate": 100}
    assert groups == {
        "kinesis.analytics.flink.run.options": {"python": "main.py", "jarfile": "lib/clickstream-flink-connectors.jar"},
        "ClicksStream": stream("clicks"),
        "FeaturesStream": stream("features"),
        "DetectionsStream": stream("detections"),
        "Job": {
            "freq": "10min",
            "allowed_lateness": "20min",
            "out_of_orderness": "300",  # the S3 producer's skew bound: half the lateness, at most 300 s
            "idle_timeout": "60",
            "detectors": "baseline,rcf-streaming",
            "timezone": "Europe/Paris",
            "site": "site",
            "clicks_format": "clicks",
            "source_settings": json.dumps(source, separators=(",", ":"), sort_keys=True),
            "python_execution_mode": "thread",
            "detector_rules": "{}",
        },
    }


def test_role_is_least_privilege(template, ids, app_props):
    roles = resources(template, "AWS::IAM::Role")
    role = roles[ids["role"]]["Properties"]
    assert app_props["ServiceExecutionRole"] == {"Fn::GetAtt": [ids["role"], "Arn"]}
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "kinesisanalytics.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert "ManagedPolicyArns" not in role and "Policies" not in role

    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": ids["role"]} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert all(s["Effect"] == "Allow" and "Condition" not in s and "NotAction" not in s for s in statements)
    granted = set()
    for s in statements:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        targets = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        granted |= {(a, json.dumps(r, sort_keys=True)) for a in actions for r in targets}

    location = app_props["ApplicationConfiguration"]["ApplicationCodeConfiguration"]["CodeContent"]["S3ContentLocation"]
    code_object = {"Fn::Join": ["", [*location["BucketARN"]["Fn::Join"][1], "/" + location["FileKey"]]]}
    log_stream = _log_arn({"Ref": ids["logs"]}, ":log-stream:", {"Ref": ids["log_stream"]})
    read = (
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
    )
    expected = [
        *[(a, {"Fn::GetAtt": [ids["clicks"], "Arn"]}) for a in read],
        ("kinesis:PutRecords", {"Fn::GetAtt": [ids["features"], "Arn"]}),
        ("kinesis:PutRecords", {"Fn::GetAtt": [ids["detections"], "Arn"]}),
        ("s3:GetObject", code_object),
        ("s3:GetObjectVersion", code_object),
        ("logs:DescribeLogGroups", _log_arn("*")),
        ("logs:DescribeLogStreams", _log_arn({"Ref": ids["logs"]}, ":log-stream:*")),
        ("logs:PutLogEvents", log_stream),
    ]
    assert granted == {(a, json.dumps(r, sort_keys=True)) for a, r in expected}
    # The streams use the AWS managed key alias/aws/kinesis: no KMS statement is needed.
    assert not any(a.startswith("kms:") for a, _ in granted)
    # The application waits for the role and its policy (the service checks the role at create time).
    application = resources(template, "AWS::KinesisAnalyticsV2::Application")[ids["application"]]
    policy = next(
        k
        for k, p in resources(template, "AWS::IAM::Policy").items()
        if {"Ref": ids["role"]} in p["Properties"]["Roles"]
    )
    assert {ids["role"], policy} <= set(application["DependsOn"])


def test_logs_go_to_its_own_group_with_the_retention_setting(template, ids):
    group = resources(template, "AWS::Logs::LogGroup")[ids["logs"]]["Properties"]
    assert group["RetentionInDays"] == 14
    (option,) = resources(template, "AWS::KinesisAnalyticsV2::ApplicationCloudWatchLoggingOption").values()
    assert option["Properties"]["ApplicationName"] == {"Ref": ids["application"]}
    assert option["Properties"]["CloudWatchLoggingOption"]["LogStreamARN"] == _log_arn(
        {"Ref": ids["logs"]}, ":log-stream:", {"Ref": ids["log_stream"]}
    )


def _sdk_call(props, key):
    body = props[key]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return json.loads("".join(p if isinstance(p, str) else json.dumps("TOKEN")[1:-1] for p in parts))


def test_custom_resource_starts_the_application_and_stops_it_on_delete(template, ids):
    (starter_id,) = [k for k in resources(template, "Custom::AWS") if k.startswith("FlinkStarter")]
    starter = resources(template, "Custom::AWS")[starter_id]
    props = starter["Properties"]
    create, update, delete = (_sdk_call(props, k) for k in ("Create", "Update", "Delete"))
    assert (create["service"], create["action"]) == ("KinesisAnalyticsV2", "startApplication")
    assert create["parameters"] == {"ApplicationName": "TOKEN"} and update == create
    assert (delete["action"], delete["parameters"]) == ("stopApplication", {"ApplicationName": "TOKEN", "Force": False})
    # The application's name is the token in each call.
    assert {"Ref": ids["application"]} in props["Create"]["Fn::Join"][1]
    logging_id = next(iter(resources(template, "AWS::KinesisAnalyticsV2::ApplicationCloudWatchLoggingOption")))
    assert logging_id in starter["DependsOn"]
    (policy,) = [
        p
        for k, p in resources(template, "AWS::IAM::Policy").items()
        if k.startswith("FlinkStarterCustomResourcePolicy")
    ]
    (stmt,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(stmt["Action"]) == ["kinesisanalytics:StartApplication", "kinesisanalytics:StopApplication"]
    assert stmt["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                PARTITION,
                ":kinesisanalytics:",
                REGION,
                ":",
                ACCOUNT,
                ":application/",
                {"Ref": ids["application"]},
            ],
        ]
    }


def test_no_aggregator_or_detector_lambda_and_the_alerter_reads_detections(template, ids):
    handlers = sorted(r["Properties"].get("Handler", "") for r in resources(template, "AWS::Lambda::Function").values())
    ours = [h for h in handlers if h.startswith("lambdas.")]
    assert ours == ["lambdas.alerter.app.handler", "lambdas.prepare.app.handler", "lambdas.producer.app.handler"]
    sources = [
        m["Properties"]["EventSourceArn"] for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
    ]
    assert sources == [{"Fn::GetAtt": [ids["detections"], "Arn"]}]
    assert not [k for k in resources(template, "AWS::Events::Rule") if "CloseWindows" in k]


def test_flink_alarms_notify_the_alert_topic(template, ids):
    alarms = {k: a["Properties"] for k, a in resources(template, "AWS::CloudWatch::Alarm").items()}
    flink = {k: p for k, p in alarms.items() if k.startswith("MonitoringFlink")}
    assert len(flink) == 3
    for props in flink.values():
        assert props["AlarmActions"] == [{"Ref": ids["topic"]}]
    app_dim = {"Application": {"Ref": ids["application"]}}

    (downtime,) = [p for k, p in flink.items() if "Downtime" in k]
    assert alarm_metric(downtime) == {
        "namespace": "AWS/KinesisAnalytics",
        "name": "downtime",
        "dimensions": app_dim,
        "statistic": "Maximum",
        "period": 300,
    }
    assert (downtime["ComparisonOperator"], downtime["Threshold"]) == ("GreaterThanThreshold", 0)
    assert downtime["TreatMissingData"] == "breaching"

    (failed,) = [p for k, p in flink.items() if "FailedCheckpoints" in k]
    expr = {m["Id"]: m for m in failed["Metrics"]}
    (rate,) = [m for m in expr.values() if "Expression" in m]
    assert rate["Expression"] == "RATE(m1)" and rate["ReturnData"] is True
    assert expr["m1"]["MetricStat"]["Metric"]["MetricName"] == "numberOfFailedCheckpoints"
    assert {d["Name"]: d["Value"] for d in expr["m1"]["MetricStat"]["Metric"]["Dimensions"]} == app_dim
    assert (failed["ComparisonOperator"], failed["Threshold"]) == ("GreaterThanThreshold", 0)

    (lag,) = [p for k, p in flink.items() if k.startswith("MonitoringFlinkLag")]
    (query,) = lag["Metrics"]
    assert query["Expression"] == {
        "Fn::Join": [
            "",
            [
                'SELECT MAX(millisBehindLatest) FROM "AWS/KinesisAnalytics" WHERE Application = \'',
                {"Ref": ids["application"]},
                "'",
            ],
        ]
    }
    assert (lag["Threshold"], lag["EvaluationPeriods"], query["Period"]) == (120000, 3, 300)

    # No Lambda-engine alarms for functions that are not there.
    assert not [k for k in alarms if "aggregator" in k.lower() or "detector" in k.lower().replace("anomalies", "")]


def test_dashboard_has_the_flink_row_and_the_band_watches_window_clicks(template, ids):
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = "".join(
        p if isinstance(p, str) else f"<{p.get('Ref', '?')}>"
        for p in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    )
    for name in (
        "KPUs",
        "uptime",
        "downtime",
        "lastCheckpointDuration",
        "numberOfFailedCheckpoints",
        "Clicks",
        "MalformedClicks",
        "LateClicksDropped",
    ):
        assert f'["AWS/KinesisAnalytics","{name}","Application","<{ids["application"]}>"' in body, name
    assert "SELECT MAX(millisBehindLatest)" in body
    (band,) = [
        a["Properties"]
        for k, a in resources(template, "AWS::CloudWatch::Alarm").items()
        if k.startswith("MonitoringClicksOutsideBand")
    ]
    stat = next(m for m in band["Metrics"] if "MetricStat" in m)["MetricStat"]
    assert stat["Metric"]["MetricName"] == "WindowClicks"
    assert {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]} == {
        "service": "alerter",
        "detector": "baseline",
    }


def test_application_name_is_an_output(template, ids):
    outputs = template.to_json()["Outputs"]
    assert outputs["FlinkApplication"]["Value"] == {"Ref": ids["application"]}


def test_nag_acknowledgements_of_the_flink_role_are_exact(synthesized, ids):
    outdir = synthesized[0]
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []
    suppressed = {
        v["ruleName"]
        for v in nag["suppressedViolations"]
        for c in v["violatingConstructs"]
        if c["constructPath"].startswith(f"{STACK_NAME}/Flink/")
    }
    assert suppressed == {
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        f"<{ids['logs']}>:log-stream:*]",
    }
    metadata = json.loads((outdir / f"{STACK_NAME}.metadata.json").read_text())
    reasons = [
        reason
        for path, entries in metadata.items()
        if path.startswith(f"/{STACK_NAME}/Flink/")
        for e in entries
        if e["type"] == "aws:cdk:acknowledged-rules"
        for reason in e["data"].values()
    ]
    assert len(reasons) == 2 and all(len(r) >= 40 for r in reasons)


@pytest.mark.slow
def test_cfn_lint_no_errors(synthesized):
    findings = cfn_lint_findings(synthesized[0] / f"{STACK_NAME}.template.json")
    assert [f for f in findings if f[0] not in CFN_LINT_ACCEPTED] == []


def test_customer_managed_stream_keys_are_granted(tmp_path):
    import aws_cdk as cdk
    from aws_cdk import aws_kinesis as kinesis
    from aws_cdk import aws_logs as logs
    from aws_cdk.assertions import Template

    from stacks.flink_app import FlinkApplication

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path / "out")), "Keys")
    streams = {
        n: kinesis.Stream(stack, n, encryption=kinesis.StreamEncryption.KMS)
        for n in ("Clicks", "Features", "Detections")
    }
    FlinkApplication(
        stack,
        "Flink",
        clicks=streams["Clicks"],
        features=streams["Features"],
        detections=streams["Detections"],
        zip_path=stand_in_zip(tmp_path),
        parallelism=1,
        parallelism_per_kpu=1,
        autoscaling=False,
        checkpoint_interval_ms=60000,
        min_pause_ms=5000,
        job={},
        log_retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    template = Template.from_stack(stack)
    keys = {n: next(k for k in resources(template, "AWS::KMS::Key") if k.startswith(n)) for n in streams}
    kms = {}
    for p in resources(template, "AWS::IAM::Policy").values():
        for s in p["Properties"]["PolicyDocument"]["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            targets = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for r in targets:
                if any(a.startswith("kms:") for a in actions):
                    kms[r["Fn::GetAtt"][0]] = sorted(actions)
    assert kms == {
        keys["Clicks"]: ["kms:Decrypt"],
        keys["Features"]: ["kms:GenerateDataKey"],
        keys["Detections"]: ["kms:GenerateDataKey"],
    }


def test_missing_zip_fails_with_make_flink_zip(tmp_path):
    from stacks.settings import Settings, SettingsError

    missing = tmp_path / "nope.zip"
    with pytest.raises(SettingsError, match=r"flink_application_zip=.*no such file.*make flink-zip"):
        Settings.from_context(context(streaming_engine="flink", flink_application_zip=str(missing)))
    # Other engines do not need it.
    assert Settings.from_context(context(flink_application_zip=str(missing))).streaming_engine == "lambda"


def test_parallelism_may_be_below_the_shard_count(tmp_path):
    """The job keeps one event clock per shard (tests/flink/test_msf_kinesis.py: 4 shards at parallelism 1, 2
    and 4), so synth no longer asks for a subtask per shard."""
    from stacks.settings import Settings

    values = {"streaming_engine": "flink", "flink_application_zip": str(stand_in_zip(tmp_path))}
    one = Settings.from_context(context(**values, stream_mode="provisioned", stream_shards=1, flink_parallelism=1))
    assert one.flink_parallelism == 1
    assert Settings.from_context(context(**values)).flink_parallelism == 4
    assert Settings.from_context(context(**values, flink_parallelism=1)).flink_parallelism == 1  # on demand: 4 shards
    wide = context(**values, stream_mode="provisioned", stream_shards=8, flink_parallelism=2)
    assert Settings.from_context(wide).flink_parallelism == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"flink_parallelism_per_kpu": 9}, "outside Managed Service for Apache Flink's range 1-8"),
        ({"flink_parallelism": 0}, "flink_parallelism=0: must be between 1 and 256"),
        ({"flink_application_zip": "app.tar"}, "must be a path ending in .zip"),
        (
            {"clicks_format": "cloudfront-realtime", "cloudfront_realtime_log": True},
            "streaming_engine=flink needs clicks_format=clicks",
        ),
    ],
)
def test_invalid_flink_settings_fail_clearly(tmp_path, overrides, message):
    from stacks.settings import Settings, SettingsError

    values = {"streaming_engine": "flink", "flink_application_zip": str(stand_in_zip(tmp_path)), **overrides}
    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        Settings.from_context(context(**values))
