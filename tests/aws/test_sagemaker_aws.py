"""SageMaker workflows against moto in-process: exact CreateTrainingJob requests, waiting, failures,
the endpoint lifecycle and tag-based cleanup."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from clickstream_anomaly.aws.training.cleanup import cleanup, find_project_resources
from clickstream_anomaly.aws.training.endpoints import deploy
from clickstream_anomaly.aws.training.errors import EndpointFailedError, JobFailedError
from clickstream_anomaly.aws.training.jobs import (
    TrainingSettings,
    deepar_training_request,
    format_result,
    rcf_training_request,
    start_training_job,
    wait_for_training_job,
)
from clickstream_anomaly.sagemaker_config import SageMakerConfigError

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/clickstream-sagemaker"
RCF_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/randomcutforest:1"
DEEPAR_IMAGE = "522234722520.dkr.ecr.us-east-1.amazonaws.com/forecasting-deepar:1"


@pytest.fixture
def sm(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def _capture(client, operation):
    """Record the JSON body of every ``operation`` request as sent on the wire."""
    sent = []

    def hook(params, **_):
        sent.append(json.loads(params["body"]))

    client.meta.events.register(f"before-call.sagemaker.{operation}", hook)
    return sent


def _settings(**kw):
    return TrainingSettings(role_arn=ROLE, bucket="clicks-bucket", region=REGION, prefix="exp1", **kw)


def test_rcf_create_training_job_request_is_exact(sm):
    sent = _capture(sm, "CreateTrainingJob")
    req = rcf_training_request(
        _settings(job_name="rcf-job-1"), {"num_trees": 50, "num_samples_per_tree": 512, "eval_metrics": ["accuracy"]}
    )
    start_training_job(sm, req)
    (body,) = sent
    assert body["TrainingJobName"] == "rcf-job-1"
    assert body["RoleArn"] == ROLE
    assert body["AlgorithmSpecification"] == {"TrainingImage": RCF_IMAGE, "TrainingInputMode": "File"}
    assert body["HyperParameters"] == {
        "feature_dim": "4",
        "num_trees": "50",
        "num_samples_per_tree": "512",
        "eval_metrics": '["accuracy"]',
    }
    assert body["InputDataConfig"] == [
        {
            "ChannelName": "train",
            "ContentType": "text/csv;label_size=0",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://clicks-bucket/exp1/rcf/train/",
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
        },
        {
            "ChannelName": "test",
            "ContentType": "text/csv;label_size=1",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://clicks-bucket/exp1/rcf/test/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        },
    ]
    assert body["OutputDataConfig"] == {"S3OutputPath": "s3://clicks-bucket/exp1/models/"}
    assert body["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}
    assert {"Key": "project", "Value": "clickstream-anomaly"} in body["Tags"]
    desc = sm.describe_training_job(TrainingJobName="rcf-job-1")
    assert desc["HyperParameters"] == body["HyperParameters"]
    assert desc["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    result = wait_for_training_job(sm, "rcf-job-1", poll_seconds=0)
    assert result.status == "Completed"
    assert result.model_artifacts == "s3://clicks-bucket/exp1/models/rcf-job-1/output/model.tar.gz"
    assert "model artifact: s3://clicks-bucket/exp1/models/rcf-job-1" in format_result("rcf", result)


def test_deepar_create_training_job_request_uses_the_blog_hyperparameters(sm):
    sent = _capture(sm, "CreateTrainingJob")
    start_training_job(sm, deepar_training_request(_settings(job_name="deepar-job-1"), {"epochs": 20}))
    (body,) = sent
    hp = body["HyperParameters"]
    assert all(isinstance(v, str) for v in hp.values())
    assert {
        k: hp[k]
        for k in (
            "time_freq",
            "context_length",
            "prediction_length",
            "num_layers",
            "epochs",
            "early_stopping_patience",
            "mini_batch_size",
            "learning_rate",
        )
    } == {
        "time_freq": "10min",
        "context_length": "144",
        "prediction_length": "144",
        "num_layers": "1",
        "epochs": "20",
        "early_stopping_patience": "40",
        "mini_batch_size": "32",
        "learning_rate": "0.0005",
    }
    assert body["AlgorithmSpecification"]["TrainingImage"] == DEEPAR_IMAGE
    assert [
        (
            c["ChannelName"],
            c["ContentType"],
            c["DataSource"]["S3DataSource"]["S3DataDistributionType"],
            c["DataSource"]["S3DataSource"]["S3Uri"],
        )
        for c in body["InputDataConfig"]
    ] == [
        ("train", "application/jsonlines", "FullyReplicated", "s3://clicks-bucket/exp1/deepar/train/"),
        ("test", "application/jsonlines", "FullyReplicated", "s3://clicks-bucket/exp1/deepar/test/"),
    ]
    assert body["ResourceConfig"]["InstanceType"] == "ml.c5.2xlarge"


@pytest.mark.parametrize(
    "bad",
    [
        {"role_arn": ""},
        {"role_arn": "not-an-arn"},
        {"bucket": ""},
        {"instance_type": "m5.large"},
    ],
)
def test_invalid_settings_fail_before_any_call(sm, bad):
    calls = []
    sm.meta.events.register("before-call.sagemaker", lambda **kw: calls.append(kw["model"].name))
    base = {"role_arn": ROLE, "bucket": "clicks-bucket", "region": REGION}
    with pytest.raises(SageMakerConfigError):
        start_training_job(sm, rcf_training_request(TrainingSettings(**{**base, **bad}), {}))
    with pytest.raises(SageMakerConfigError, match="num_trees=20"):
        start_training_job(sm, rcf_training_request(TrainingSettings(**base), {"num_trees": 20}))
    assert calls == []


def _rewrite(client, operation, rewrite):
    """Make moto's ``operation`` responses pass through ``rewrite(parsed, call_number)``."""
    count = {"n": 0}

    def hook(parsed, **_):
        count["n"] += 1
        rewrite(parsed, count["n"])

    client.meta.events.register(f"after-call.sagemaker.{operation}", hook)


def test_wait_reports_progress_and_metrics(sm):
    start_training_job(sm, rcf_training_request(_settings(job_name="rcf-job-2"), {}))

    def rewrite(parsed, n):
        if n <= 2:
            parsed.update(TrainingJobStatus="InProgress", SecondaryStatus=["Starting", "Training"][n - 1])
        else:
            parsed["FinalMetricDataList"] = [
                {"MetricName": "test:f1", "Value": 0.75},
                {"MetricName": "test:precision", "Value": 0.6},
            ]

    _rewrite(sm, "DescribeTrainingJob", rewrite)
    messages, sleeps = [], []
    result = wait_for_training_job(sm, "rcf-job-2", poll_seconds=7, on_progress=messages.append, sleep=sleeps.append)
    assert sleeps == [7, 7]
    assert [m.split("] ")[1] for m in messages] == [
        "rcf-job-2: InProgress / Starting",
        "rcf-job-2: InProgress / Training",
        "rcf-job-2: Completed / Completed",
    ]
    assert result.metrics == {"test:f1": 0.75, "test:precision": 0.6}
    assert format_result("rcf", result).splitlines()[1] == "  test:f1 = 0.75"


def test_failed_job_raises_with_the_failure_reason(sm):
    start_training_job(sm, rcf_training_request(_settings(job_name="rcf-job-3"), {}))
    _rewrite(
        sm,
        "DescribeTrainingJob",
        lambda p, n: p.update(
            TrainingJobStatus="Failed",
            SecondaryStatus="Failed",
            FailureReason="ClientError: Unable to read data channel 'train'",
        ),
    )
    with pytest.raises(JobFailedError, match="rcf-job-3 failed: ClientError: Unable to read data channel"):
        wait_for_training_job(sm, "rcf-job-3", poll_seconds=0)


def _trained(sm, algorithm="rcf", name="clickstream-anomaly-rcf-20200101-000000-000"):
    build = rcf_training_request if algorithm == "rcf" else deepar_training_request
    start_training_job(sm, build(_settings(job_name=name), {}))
    return name


def test_deploy_creates_tagged_resources_then_updates_in_place(sm):
    job = _trained(sm)
    messages = []
    dep = deploy(sm, "rcf", poll_seconds=0, on_progress=messages.append)  # finds the newest rcf job
    assert (dep.endpoint_name, dep.action, dep.status) == ("clickstream-anomaly-rcf", "created", "InService")
    model = sm.describe_model(ModelName=dep.model_name)
    assert model["PrimaryContainer"]["Image"] == RCF_IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://clicks-bucket/exp1/models/{job}/output/model.tar.gz"
    assert model["ExecutionRoleArn"] == ROLE  # the training job's role
    config = sm.describe_endpoint_config(EndpointConfigName=dep.endpoint_config_name)
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    assert sm.describe_endpoint(EndpointName=dep.endpoint_name)["EndpointConfigName"] == dep.endpoint_config_name
    for arn in (
        model["ModelArn"],
        config["EndpointConfigArn"],
        sm.describe_endpoint(EndpointName=dep.endpoint_name)["EndpointArn"],
    ):
        assert {"Key": "project", "Value": "clickstream-anomaly"} in sm.list_tags(ResourceArn=arn)["Tags"]
    assert any("InService" in m for m in messages)

    # moto does not implement UpdateEndpoint: answer it here, check the request, and let DescribeEndpoint
    # show the new config afterwards, as SageMaker does once an update succeeds
    updates = []

    def fake_update(params, model, **_):
        updates.append(json.loads(params["body"]))
        return type("Http", (), {"status_code": 200})(), {"EndpointArn": "arn:fake"}

    def updated(parsed, n):
        if updates:
            parsed["EndpointConfigName"] = updates[-1]["EndpointConfigName"]

    sm.meta.events.register("before-call.sagemaker.UpdateEndpoint", fake_update)
    _rewrite(sm, "DescribeEndpoint", updated)
    dep2 = deploy(sm, "rcf", training_job=job, instance_type="ml.c5.2xlarge", poll_seconds=0)
    assert dep2.action == "updated" and dep2.endpoint_config_name != dep.endpoint_config_name
    assert updates == [{"EndpointName": "clickstream-anomaly-rcf", "EndpointConfigName": dep2.endpoint_config_name}]


def test_an_update_that_sagemaker_rolled_back_is_a_failure(sm):
    job = _trained(sm)
    first = deploy(sm, "rcf", poll_seconds=0)

    def fake_update(params, model, **_):  # accepted, then rolled back: the endpoint stays on its old config
        return type("Http", (), {"status_code": 200})(), {"EndpointArn": "arn:fake"}

    sm.meta.events.register("before-call.sagemaker.UpdateEndpoint", fake_update)
    with pytest.raises(EndpointFailedError, match=rf"still on config {first.endpoint_config_name}, not .*rolled back"):
        deploy(sm, "rcf", training_job=job, instance_type="ml.c5.2xlarge", poll_seconds=0)


def test_endpoint_that_fails_raises_with_reason(sm):
    _trained(sm, "deepar", "clickstream-anomaly-deepar-20200101-000000-000")
    _rewrite(
        sm,
        "DescribeEndpoint",
        lambda p, n: (
            p.update(
                EndpointStatus="Creating" if n == 2 else "Failed",
                FailureReason=(
                    "The primary container for production variant AllTraffic did not pass the ping health check"
                ),
            )
            if n >= 2
            else None
        ),
    )
    with pytest.raises(EndpointFailedError, match=r"is Failed: The primary container .* ping health check"):
        deploy(sm, "deepar", poll_seconds=0)


def test_endpoint_hyperparameters_follow_the_model_tag_to_the_job(sm):
    from clickstream_anomaly.aws.training.endpoints import endpoint_hyperparameters

    start_training_job(
        sm,
        deepar_training_request(
            _settings(job_name="clickstream-anomaly-deepar-20200101-000000-000"), {"prediction_length": 24}
        ),
    )
    dep = deploy(sm, "deepar", poll_seconds=0)
    assert endpoint_hyperparameters(sm, dep.endpoint_name)["prediction_length"] == "24"
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://x/m"})
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName="not-ours", EndpointConfigName="c")
    assert endpoint_hyperparameters(sm, "not-ours") == {}
    assert endpoint_hyperparameters(sm, "missing") == {}


def test_deploy_without_training_job_is_a_clear_error(sm):
    with pytest.raises(SageMakerConfigError, match="no completed rcf training job"):
        deploy(sm, "rcf", poll_seconds=0)


def test_cleanup_deletes_what_it_created_and_nothing_else(sm):
    _trained(sm)
    _trained(sm, "deepar", "clickstream-anomaly-deepar-20200101-000000-000")
    rcf = deploy(sm, "rcf", poll_seconds=0)
    deepar = deploy(sm, "deepar", poll_seconds=0)
    # someone else's resources in the same account, untagged or tagged differently
    sm.create_model(
        ModelName="other-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": RCF_IMAGE, "ModelDataUrl": "s3://x/model.tar.gz"},
        Tags=[{"Key": "project", "Value": "something-else"}],
    )
    sm.create_endpoint_config(
        EndpointConfigName="other-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "other-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="other-endpoint", EndpointConfigName="other-config")

    ours = {(r.kind, r.name) for r in find_project_resources(sm)}
    assert ours == {
        ("endpoint", rcf.endpoint_name),
        ("endpoint", deepar.endpoint_name),
        ("endpoint-config", rcf.endpoint_config_name),
        ("endpoint-config", deepar.endpoint_config_name),
        ("model", rcf.model_name),
        ("model", deepar.model_name),
    }
    assert {r.name for r in find_project_resources(sm, "deepar")} == {deepar.endpoint_name, deepar.model_name}

    listed = cleanup(sm, dry_run=True)
    assert {(r.kind, r.name) for r in listed} == ours
    assert len(sm.list_endpoints()["Endpoints"]) == 3  # dry run deletes nothing

    deleted = cleanup(sm)
    assert [r.kind for r in deleted] == ["endpoint"] * 2 + ["endpoint-config"] * 2 + ["model"] * 2
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["other-endpoint"]
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == ["other-config"]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["other-model"]
    assert cleanup(sm) == []
