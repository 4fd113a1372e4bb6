"""CDK assertions for the default settings (lambda engine, no endpoints): one synth for the module."""

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


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cdk-default")
    _app, stack, template = synth(outdir)
    return outdir, stack, template


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized[2]


def test_three_streams_encrypted_on_demand(template):
    from aws_cdk.assertions import Match

    template.resource_count_is("AWS::Kinesis::Stream", 3)
    template.all_resources_properties(
        "AWS::Kinesis::Stream",
        {
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
            "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
            "ShardCount": Match.absent(),
            "RetentionPeriodHours": 24,
        },
    )


def test_every_function_runs_the_project_asset_with_both_layers(template):
    functions = resources(template, "AWS::Lambda::Function")
    ours = {k: r for k, r in functions.items() if r["Properties"].get("Handler", "").startswith("lambdas.")}
    handlers = sorted(r["Properties"]["Handler"] for r in ours.values())
    assert handlers == [
        f"lambdas.{n}.app.handler" for n in ("aggregator", "alerter", "detector", "prepare", "producer")
    ]
    for props in (r["Properties"] for r in ours.values()):
        assert props["Runtime"] == "python3.13"
        assert props["MemorySize"] >= 512  # the AWS SDK for pandas layer needs at least 512 MB
        assert len(props["Layers"]) == 2
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == props["Handler"].split(".")[1]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "ClickstreamAnomaly"
        assert env["LOG_LEVEL"] == "INFO"


def test_layers_come_from_public_ssm_parameters(template):
    params = template.to_json()["Parameters"]
    defaults = {p.get("Default") for p in params.values()}
    assert "/aws/service/aws-sdk-pandas/3.17.0/py3.13/x86_64/layer-arn" in defaults
    # pinned to the release the tests run, so a deploy does not change it
    assert "/aws/service/powertools/python/x86_64/python3.13/3.37.0" in defaults
    assert not any(str(d).endswith("/latest") for d in defaults)


def test_synth_says_the_layer_parameters_exist_in_commercial_regions_only(synthesized):
    from aws_cdk.assertions import Annotations, Match

    Annotations.from_stack(synthesized[1]).has_warning("*", Match.string_like_regexp(".*aws-cn and aws-us-gov.*"))


def test_asset_ships_only_core_and_lambdas(synthesized):
    outdir = synthesized[0]
    assets = [d for d in outdir.glob("asset.*") if (d / "lambdas").is_dir()]
    assert len(assets) == 1, "all pipeline functions share one code asset"
    asset = assets[0]
    assert sorted(p.name for p in asset.iterdir()) == ["clickstream_anomaly", "lambdas"]
    assert (asset / "lambdas" / "prepare" / "app.py").is_file()
    assert (asset / "clickstream_anomaly" / "records.py").is_file()
    assert not list(asset.rglob("__pycache__"))


def test_environment_contract(template):
    env = {
        n: function_by_handler(template, n)[1]["Properties"]["Environment"]["Variables"]
        for n in ("producer", "aggregator", "detector", "alerter")
    }
    assert set(env["producer"]) >= {"CLICKS_STREAM_NAME", "REJECTED_PREFIX", "CLICKS_MAX_SKEW_SECONDS"}
    assert env["producer"]["CLICKS_MAX_SKEW_SECONDS"] == "300"  # half the default 10-minute lateness
    assert env["producer"]["REJECTED_PREFIX"] == "rejected/"
    assert env["aggregator"]["WINDOW_FREQ"] == "10min"
    assert env["aggregator"]["ALLOWED_LATENESS"] == "10min"
    assert set(env["aggregator"]) >= {"FEATURES_STREAM_NAME", "STATE_BUCKET"}
    det = env["detector"]
    assert det["STATE_KEY"] == "detector/state.bin"
    # The blog's parameters (100, 256, 4320, 1, true) are the defaults of both engines.
    assert (
        det["RCF_NUM_TREES"],
        det["RCF_SAMPLE_SIZE"],
        det["RCF_TIME_DECAY"],
        det["RCF_SHINGLE_SIZE"],
        det["RCF_WITH_DIRECTIONALITY"],
    ) == ("100", "256", "4320", "1", "true")
    assert set(det) >= {"STATE_BUCKET", "DETECTIONS_STREAM_NAME"}
    alerter = env["alerter"]
    assert (alerter["THRESHOLD_MODE"], alerter["THRESHOLD"], alerter["SIGMA_K"]) == ("static", "2.6", "3")
    assert alerter["METRICS_NAMESPACE"] == "ClickstreamAnomaly"
    assert alerter["WINDOW_FREQ"] == "10min"  # incidents group windows of the aggregator's length
    assert set(alerter) >= {"TOPIC_ARN", "STATE_BUCKET"}
    # The project's own clicks everywhere by default: no salt to share, no real-time log configuration.
    assert env["aggregator"]["CLICKS_FORMAT"] == "clicks" and env["producer"]["LANDING_FORMAT"] == "clicks"
    assert "USER_SALT_SECRET_ARN" not in env["aggregator"] and "USER_SALT_SECRET_ARN" not in env["producer"]
    template.resource_count_is("AWS::SecretsManager::Secret", 0)
    template.resource_count_is("AWS::CloudFront::RealtimeLogConfig", 0)


def test_kinesis_event_sources_fail_safely(template):
    mappings = resources(template, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 3  # aggregator <- clicks, detector <- features, alerter <- detections
    for m in mappings.values():
        props = m["Properties"]
        assert props["BisectBatchOnFunctionError"] is True
        assert props["MaximumRetryAttempts"] == 10
        assert props["MaximumRecordAgeInSeconds"] == 24 * 3600
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["StartingPosition"] == "TRIM_HORIZON"
        destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert "Fn::GetAtt" in destination and destination["Fn::GetAtt"][1] == "Arn"
        assert destination["Fn::GetAtt"][0] in resources(template, "AWS::SQS::Queue")


def test_failure_queues_encrypted_and_ssl_only(template):
    queues = resources(template, "AWS::SQS::Queue")
    assert len(queues) == 4  # producer (async invoke), aggregator, detector, alerter
    for q in queues.values():
        assert q["Properties"]["SqsManagedSseEnabled"] is True
    policies = resources(template, "AWS::SQS::QueuePolicy")
    assert all(
        any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
        for p in policies.values()
    )


def test_aggregator_also_runs_every_minute(template):
    from aws_cdk.assertions import Match

    logical, _ = function_by_handler(template, "aggregator")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "Targets": Match.array_with([Match.object_like({"Arn": {"Fn::GetAtt": [logical, "Arn"]}})]),
        },
    )


def test_producer_triggered_by_landing_prefix_only(template):
    notifications = resources(template, "Custom::S3BucketNotifications")
    (config,) = (n["Properties"]["NotificationConfiguration"] for n in notifications.values())
    (lam,) = config["LambdaFunctionConfigurations"]
    assert lam["Events"] == ["s3:ObjectCreated:*"]
    assert lam["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}


def test_buckets_private_encrypted_ssl_only_and_logged(template):
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 5  # access logs, state, landing, lake, models
    for logical, b in buckets.items():
        props = b["Properties"]
        assert (
            props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
                "SSEAlgorithm"
            ]
            == "AES256"
        )
        assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
        assert b["DeletionPolicy"] == "Retain"
        if "AccessLogs" not in logical:
            assert "LoggingConfiguration" in props
    for p in resources(template, "AWS::S3::BucketPolicy").values():
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )


def test_firehose_writes_lake_partitioned_by_date(template):
    streams = resources(template, "AWS::KinesisFirehose::DeliveryStream")
    prefixes = sorted(s["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"] for s in streams.values())
    assert prefixes == ["clicks/dt=!{timestamp:yyyy-MM-dd}/", "features/dt=!{timestamp:yyyy-MM-dd}/"]
    for s in streams.values():
        props = s["Properties"]
        assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
        dest = props["ExtendedS3DestinationConfiguration"]
        assert dest["CompressionFormat"] == "GZIP"
        assert "!{firehose:error-output-type}" in dest["ErrorOutputPrefix"]
        processors = dest["ProcessingConfiguration"]["Processors"]
        assert [p["Type"] for p in processors] == ["AppendDelimiterToRecord"]


def test_topic_encrypted_with_rotating_key_and_ssl_only(template):
    topic = next(iter(resources(template, "AWS::SNS::Topic").values()))
    key_ref = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = resources(template, "AWS::KMS::Key")[key_ref]
    assert key["Properties"]["EnableKeyRotation"] is True
    principals = [s["Principal"] for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals  # alarms can publish to the topic
    policy = next(iter(resources(template, "AWS::SNS::TopicPolicy").values()))
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )
    template.resource_count_is("AWS::SNS::Subscription", 0)  # no alert_email by default


def _alarms(template):
    return list(resources(template, "AWS::CloudWatch::Alarm").values())


def _alerter_metric_names() -> set[str]:
    """The EMF metric names the alerter emits for one detection (the runtime's one definition)."""
    from datetime import UTC, datetime

    from clickstream_anomaly.records import Detection, Window
    from clickstream_anomaly.streaming.alerting import metric_values

    det = Detection(
        window=Window(datetime(2020, 7, 15, tzinfo=UTC), 5, 20, 30, 10),
        detector="x",
        score=3.0,
        threshold=2.6,
        is_anomaly=True,
    )
    return {name for name, _, _ in metric_values(det)}


def test_anomaly_alarm_per_detector_on_alerter_metric(template):
    from clickstream_anomaly.records import BASELINE, PAGES
    from stacks.alerting import ANOMALIES_METRIC

    assert ANOMALIES_METRIC in _alerter_metric_names()
    watched = [(alarm_metric(a["Properties"]), a["Properties"]) for a in _alarms(template)]
    anomalies = [(m, p) for m, p in watched if m and m["name"] == ANOMALIES_METRIC]
    # one alarm per detector of the lambda engine: by default the time-aware baseline and its per-page twin
    assert sorted(m["dimensions"]["detector"] for m, _ in anomalies) == [BASELINE, PAGES]
    for metric, props in anomalies:
        assert metric == {
            "namespace": "ClickstreamAnomaly",
            "name": ANOMALIES_METRIC,
            "statistic": "Sum",
            "period": 600,
            "dimensions": {"detector": metric["dimensions"]["detector"], "service": "alerter"},
        }
        assert props["Threshold"] == 1 and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["TreatMissingData"] == "notBreaching"


def test_health_alarms(template):
    props = [a["Properties"] for a in _alarms(template)]
    names = [m["name"] for m in map(alarm_metric, props) if m]
    assert names.count("Errors") == 5  # every pipeline function
    assert names.count("IteratorAge") == 3  # the three Kinesis consumers
    assert names.count("ApproximateNumberOfMessagesVisible") == 4  # every failure queue
    assert names.count("ExecutionsFailed") == 2  # both training pipelines
    topics = resources(template, "AWS::SNS::Topic")
    for p in props:  # every alarm notifies the topic
        assert p["AlarmActions"][0]["Ref"] in topics


def test_clicks_anomaly_detection_band_alarm(template):
    band = [a["Properties"] for a in _alarms(template) if "ThresholdMetricId" in a["Properties"]]
    assert len(band) == 1
    (p,) = band
    assert p["ComparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold"
    expressions = {m["Id"]: m for m in p["Metrics"]}
    assert expressions[p["ThresholdMetricId"]]["Expression"].startswith("ANOMALY_DETECTION_BAND(")
    stat = next(m["MetricStat"] for m in p["Metrics"] if "MetricStat" in m)
    assert stat["Metric"]["MetricName"] == "Clicks" and stat["Period"] == 600


def test_dashboard_shows_features_scores_and_alarms(template):
    (dash,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = dash["Properties"]["DashboardBody"]
    text = "".join(p if isinstance(p, str) else "" for p in body["Fn::Join"][1])
    from stacks.alerting import FEATURE_METRICS, SCORE_METRIC, THRESHOLD_METRIC

    graphed = [*FEATURE_METRICS, SCORE_METRIC, THRESHOLD_METRIC]
    assert set(graphed) <= _alerter_metric_names()
    for needle in [*(f'"{m}"' for m in graphed), "ANOMALY_DETECTION_BAND", '"alarms"']:
        assert needle in text
    from stacks.alerting import AGGREGATOR_METRICS  # the aggregator's counts (emitted: tests/lambdas)

    for name in AGGREGATOR_METRICS:
        assert f'"{name}","service","aggregator"' in text, name


def test_training_pipelines_stop_at_the_model_without_endpoints(template):
    for alg in ("Rcf", "Deepar"):
        asl = state_machine_definition(template, f"Models{alg}Pipeline")
        states = asl["States"]
        resources_used = [s.get("Resource", "") for s in states.values()]
        assert any(r.endswith(":sagemaker:createTrainingJob.sync") for r in resources_used)
        assert any(r.endswith(":sagemaker:createModel") for r in resources_used)
        assert not any("Endpoint" in r for r in resources_used)
    template.resource_count_is("AWS::Events::Rule", 1)  # only the aggregator's minute tick, no retraining


def test_rcf_training_job_shape(template):
    asl = state_machine_definition(template, "ModelsRcfPipeline")
    train = next(s for s in asl["States"].values() if s.get("Resource", "").endswith("createTrainingJob.sync"))
    params = train["Parameters"]
    (channel,) = params["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    assert channel["ContentType"] == "text/csv;label_size=0"
    assert channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    # s3:// URIs (an https URL would make SageMaker read the S3 endpoint host as the bucket name)
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://TOKEN/rcf/train/"
    assert params["OutputDataConfig"]["S3OutputPath"] == "s3://TOKEN/models/"
    assert params["HyperParameters"] == {"feature_dim": "4", "num_trees": "100", "num_samples_per_tree": "256"}
    assert params["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert params["TrainingJobName.$"] == "States.Format('clickstream-rcf-{}', $.run.id)"
    assert "/randomcutforest:1" in params["AlgorithmSpecification"]["TrainingImage"]


def test_deepar_training_job_shape(template):
    asl = state_machine_definition(template, "ModelsDeeparPipeline")
    train = next(s for s in asl["States"].values() if s.get("Resource", "").endswith("createTrainingJob.sync"))
    params = train["Parameters"]
    assert sorted(c["ChannelName"] for c in params["InputDataConfig"]) == ["test", "train"]
    uris = sorted(c["DataSource"]["S3DataSource"]["S3Uri"] for c in params["InputDataConfig"])
    assert uris == ["s3://TOKEN/deepar/test/", "s3://TOKEN/deepar/train/"]
    hp = params["HyperParameters"]
    assert hp["time_freq"] == "10min" and hp["prediction_length"] == "144" and hp["context_length"] == "144"
    assert "/forecasting-deepar:1" in params["AlgorithmSpecification"]["TrainingImage"]


def test_no_kda_application_and_no_scorer(template):
    template.resource_count_is("AWS::KinesisAnalytics::Application", 0)
    assert not [
        r
        for r in resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "lambdas.scorer.app.handler"
    ]


def test_no_synth_warnings_about_kda(synthesized):
    from aws_cdk.assertions import Annotations, Match

    Annotations.from_stack(synthesized[1]).has_no_warning("*", Match.string_like_regexp(".*Kinesis Data Analytics.*"))


@pytest.mark.slow
def test_cfn_lint_no_errors(synthesized):
    findings = cfn_lint_findings(synthesized[0] / f"{STACK_NAME}.template.json")
    unexpected = [f for f in findings if f[0] not in CFN_LINT_ACCEPTED]
    assert unexpected == []


def _statements_of_role(template, role_logical_id):
    return [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_logical_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_sagemaker_role_reaches_only_its_bucket_prefixes(template):
    roles = resources(template, "AWS::IAM::Role")
    (sm_role,) = [
        k
        for k, r in roles.items()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "sagemaker.amazonaws.com"}
    ]
    s3_statements = [
        s
        for s in _statements_of_role(template, sm_role)
        if any(str(a).startswith("s3:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    ]
    assert s3_statements
    for s in s3_statements:
        assert s["Resource"] != "*"
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        assert not [a for a in actions if a.endswith("*")]
    # Each pipeline may pass exactly this role, and only to SageMaker.
    for machine in resources(template, "AWS::StepFunctions::StateMachine").values():
        role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        passes = [s for s in _statements_of_role(template, role) if s["Action"] == "iam:PassRole"]
        assert passes == [
            {
                "Action": "iam:PassRole",
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [sm_role, "Arn"]},
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            }
        ]


def test_state_bucket_access_is_per_function_prefix(template):
    expected = {"aggregator": "aggregator/", "detector": "detector/", "alerter": "alerter/", "producer": "unsent/"}
    for name, prefix in expected.items():
        _, fn = function_by_handler(template, name)
        role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        object_resources = []
        for s in _statements_of_role(template, role):
            if s["Action"] in (["s3:GetObject", "s3:PutObject"], "s3:GetObject", "s3:PutObject"):
                for r in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
                    object_resources.append("".join(x if isinstance(x, str) else "" for x in r["Fn::Join"][1]))
        assert f"/{prefix}*" in object_resources, name


def test_outputs_name_what_a_user_needs(template):
    outputs = template.find_outputs("*")
    assert {
        "LandingBucket",
        "ClicksStream",
        "FeaturesStream",
        "AlertTopic",
        "Dashboard",
        "ModelsBucket",
        "RcfPipeline",
        "DeeparPipeline",
    } <= set(outputs)
    assert "incoming/" in outputs["LandingBucket"]["Description"]


@pytest.mark.parametrize("alg", ["rcf", "deepar"])
def test_step_functions_and_boto3_render_the_same_training_job_spec(template, alg):
    from clickstream_anomaly.aws.training.spec import Algorithm, TrainingJobSpec

    asl = state_machine_definition(template, f"Models{alg.capitalize()}Pipeline")
    train = next(s for s in asl["States"].values() if s.get("Resource", "").endswith("createTrainingJob.sync"))
    params = train["Parameters"]
    spec = TrainingJobSpec(
        algorithm=Algorithm(alg),
        hyperparameters=params["HyperParameters"],
        instance_type="ml.m5.large",
        with_test=False,
    )
    boto3_request = spec.create_training_job_request(bucket="TOKEN", job_name="x", role_arn="r", image="i")
    for key in ("InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition", "HyperParameters"):
        rendered = params[key]
        expected = boto3_request[key]
        if key == "InputDataConfig":  # Step Functions adds nothing; compare the channels one by one, sorted
            rendered, expected = (sorted(v, key=lambda c: c["ChannelName"]) for v in (rendered, expected))
        assert rendered == expected, key


def test_the_kda_faithful_rcf_can_run_beside_the_baseline(tmp_path):
    from clickstream_anomaly.records import BASELINE, RCF_STREAMING
    from stacks.alerting import ANOMALIES_METRIC

    rules = {"baseline": {"run_threshold": "inf"}}
    _, _, template = synth(
        tmp_path, streaming_detectors="baseline,rcf-streaming", timezone="Europe/Paris", detector_rules=rules
    )
    _, detector = function_by_handler(template, "detector")
    env = detector["Properties"]["Environment"]["Variables"]
    assert env["DETECTORS"] == "baseline,rcf-streaming" and env["TIMEZONE"] == "Europe/Paris"
    assert json.loads(env["DETECTOR_RULES"]) == rules
    watched = [alarm_metric(a["Properties"]) for a in _alarms(template)]
    names = sorted(m["dimensions"]["detector"] for m in watched if m and m["name"] == ANOMALIES_METRIC)
    assert names == sorted([BASELINE, RCF_STREAMING])
