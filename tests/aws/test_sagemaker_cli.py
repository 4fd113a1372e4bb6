"""``clickstream-anomaly sagemaker ...`` end to end: locally with --local, and against moto in-process."""

from __future__ import annotations

import argparse
import json
import sys

import boto3
import numpy as np
import pandas as pd
import pytest
import requests
from moto import mock_aws

from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.cli.sagemaker import register
from clickstream_anomaly.features import windows_from_frame, write_windows
from clickstream_anomaly.generator import Scenario, generate, write_labels
from clickstream_anomaly.records import DETECTION_COLUMNS
from clickstream_anomaly.thresholds import parse_threshold

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/clickstream-sagemaker"


def run(argv: list[str]) -> int:
    """What ``clickstream-anomaly sagemaker ...`` does (same error handling as cli.main)."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sagemaker", *argv])
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"clickstream-anomaly sagemaker: error: {exc}", file=sys.stderr)
        return 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    clicks, labels = generate(Scenario(start="2020-07-13", days=4))
    write_windows(windows_from_frame(clicks), folder / "windows.csv")
    write_labels(labels, folder / "labels.csv")
    return folder


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def test_local_workflow_end_to_end(tmp_path, data, capsys):
    model_dir = tmp_path / "models"
    assert (
        run(
            [
                "train",
                "rcf",
                "--local",
                "--input",
                str(data / "windows.csv"),
                "--model-dir",
                str(model_dir),
                "--num-trees",
                "50",
            ]
        )
        == 0
    )
    assert run(["deploy", "rcf", "--local", "--model-dir", str(model_dir)]) == 0
    assert "nothing deployed" in capsys.readouterr().out
    out = tmp_path / "rcf.csv"
    assert (
        run(
            [
                "invoke",
                "rcf",
                "--local",
                "--model-dir",
                str(model_dir),
                "--input",
                str(data / "windows.csv"),
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    dets = pd.read_csv(out)
    assert list(dets.columns) == list(DETECTION_COLUMNS) and len(dets) == 576
    assert set(dets["detector"]) == {"rcf-batch"} and dets["is_anomaly"].any()

    assert (
        run(
            [
                "train",
                "deepar",
                "--local",
                "--input",
                str(data / "windows.csv"),
                "--model-dir",
                str(model_dir),
                "--hp",
                "context_length=24",
                "--hp",
                "prediction_length=24",
                "--hp",
                "epochs=2",
                "--hp",
                "num_cells=10",
                "--hp",
                "likelihood=negative-binomial",
            ]
        )
        == 0
    )
    assert run(["deploy", "deepar", "--local", "--model-dir", str(model_dir)]) == 0
    out = tmp_path / "deepar.csv"
    assert (
        run(
            [
                "invoke",
                "deepar",
                "--local",
                "--model-dir",
                str(model_dir),
                "--input",
                str(data / "windows.csv"),
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    dets = pd.read_csv(out)
    assert len(dets) == 24 and set(dets["detector"]) == {"deepar"}
    assert (dets["p01"] <= dets["p50"]).all() and (dets["p50"] <= dets["p99"]).all()


def test_local_invoke_without_deploy_is_a_clear_error(tmp_path, data, capsys):
    assert run(["invoke", "rcf", "--local", "--model-dir", str(tmp_path), "--input", str(data / "windows.csv")]) == 2
    assert "run `sagemaker deploy rcf --local" in capsys.readouterr().err


@pytest.mark.slow
def test_aws_workflow_end_to_end_against_moto(tmp_path, data, aws_env, capsys):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="clicks-bucket")
    assert (
        run(
            [
                "prepare",
                "--input",
                str(data / "windows.csv"),
                "--labels",
                str(data / "labels.csv"),
                "--bucket",
                "clicks-bucket",
                "--prefix",
                "exp1",
            ]
        )
        == 0
    )
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="clicks-bucket")["Contents"])
    assert keys == [
        "exp1/deepar/test/test.json",
        "exp1/deepar/train/train.json",
        "exp1/rcf/scaling.json",
        "exp1/rcf/test/test.csv",
        "exp1/rcf/train/train.csv",
    ]
    train_obj = s3.get_object(Bucket="clicks-bucket", Key="exp1/rcf/train/train.csv")
    assert train_obj["ContentType"] == "text/csv;label_size=0"
    assert len(train_obj["Body"].read().decode().splitlines()) == 576

    capsys.readouterr()
    assert (
        run(
            [
                "train",
                "rcf",
                "--role",
                ROLE,
                "--bucket",
                "clicks-bucket",
                "--prefix",
                "exp1",
                "--num-trees",
                "50",
                "--poll-seconds",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Completed" in out and "model artifact: s3://clicks-bucket/exp1/models/clickstream-anomaly-rcf-" in out
    sm = boto3.client("sagemaker", region_name=REGION)
    (job,) = sm.list_training_jobs()["TrainingJobSummaries"]
    desc = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
    assert desc["HyperParameters"]["num_trees"] == "50"
    assert [c["ChannelName"] for c in desc["InputDataConfig"]] == ["train", "test"]

    assert run(["deploy", "rcf", "--poll-seconds", "0", "--quiet"]) == 0
    assert sm.describe_endpoint(EndpointName="clickstream-anomaly-rcf")["EndpointStatus"] == "InService"

    scores = [1.0 + 0.01 * (i % 7) for i in range(575)] + [9.0]
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        timeout=10,
        json={
            "results": [
                {
                    "Body": fmt.rcf_response_body(scores),
                    "ContentType": "application/json",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                }
            ],
            "region": REGION,
        },
    )
    out_csv = tmp_path / "dets.csv"
    assert (
        run(
            [
                "invoke",
                "rcf",
                "--input",
                str(data / "windows.csv"),
                "--bucket",
                "clicks-bucket",
                "--prefix",
                "exp1",
                "--batch-size",
                "1000",
                "-o",
                str(out_csv),
                "--quiet",
            ]
        )
        == 0
    )
    dets = pd.read_csv(out_csv)
    assert dets["score"].tolist() == scores
    threshold = parse_threshold("sigma:3").compute(np.asarray(scores))
    assert dets["is_anomaly"].tolist() == [s >= threshold for s in scores]
    assert dets["is_anomaly"].iloc[-1] and not dets["is_anomaly"].iloc[:-1].any()

    assert (
        run(
            [
                "train",
                "deepar",
                "--role",
                ROLE,
                "--bucket",
                "clicks-bucket",
                "--prefix",
                "exp1",
                "--hp",
                "prediction_length=24",
                "--poll-seconds",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    assert run(["deploy", "deepar", "--poll-seconds", "0", "--quiet"]) == 0
    band = {"quantiles": {"0.01": [0.0] * 24, "0.5": [50.0] * 24, "0.99": [1e6] * 24}}
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        timeout=10,
        json={
            "results": [
                {
                    "Body": json.dumps({"predictions": [band]}),
                    "ContentType": "application/json",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                }
            ],
            "region": REGION,
        },
    )
    capsys.readouterr()
    out_csv = tmp_path / "deepar.csv"
    assert run(["invoke", "deepar", "--input", str(data / "windows.csv"), "-o", str(out_csv)]) == 0
    assert "prediction_length 24 (from the training job)" in capsys.readouterr().err
    dets = pd.read_csv(out_csv)
    assert len(dets) == 24 and not dets["is_anomaly"].any() and (dets["p50"] == 50.0).all()

    sm.create_model(
        ModelName="not-ours",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://x/m.tar.gz"},
    )
    capsys.readouterr()
    assert run(["cleanup", "--dry-run"]) == 0
    assert "would delete 6 resource(s)" in capsys.readouterr().out
    assert run(["cleanup"]) == 0
    assert sm.list_endpoints()["Endpoints"] == []
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["not-ours"]


def test_failed_job_exits_1_with_the_reason(data, aws_env, monkeypatch, capsys):
    from clickstream_anomaly.aws.training import session as training_session

    real = training_session.make_session

    def session_with_failing_jobs(region=None, profile=None):
        session = real(region, profile)

        def fail(parsed, **_):
            parsed.update(TrainingJobStatus="Failed", FailureReason="AlgorithmError: feature_dim mismatch")

        session.events.register("after-call.sagemaker.DescribeTrainingJob", fail)
        return session

    monkeypatch.setattr(training_session, "make_session", session_with_failing_jobs)
    assert run(["train", "rcf", "--role", ROLE, "--bucket", "b-1", "--poll-seconds", "0", "--quiet"]) == 1
    assert "failed: AlgorithmError: feature_dim mismatch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "rcf", "--bucket", "b-1"], "missing SageMaker execution role"),
        (["train", "rcf", "--role", ROLE], "missing S3 bucket"),
        (["train", "rcf", "--role", ROLE, "--bucket", "b-1", "--num-trees", "5000"], "num_trees=5000 is outside"),
        (["train", "deepar", "--role", ROLE, "--bucket", "b-1", "--hp", "time_freq=7sec"], "DeepAR hyperparameters"),
        (["train", "deepar", "--role", ROLE, "--bucket", "b-1", "--num-trees", "60"], "is an RCF option"),
        (["prepare", "--input", "windows.csv"], "missing S3 bucket"),
    ],
)
def test_bad_settings_fail_before_any_aws_call(argv, message, aws_env, data, monkeypatch, capsys):
    monkeypatch.chdir(data)
    calls = []
    from clickstream_anomaly.aws.training import session as training_session

    real = training_session.make_session

    def counting(region=None, profile=None):
        session = real(region, profile)
        session.events.register("before-call", lambda **kw: calls.append(kw["event_name"]))
        return session

    monkeypatch.setattr(training_session, "make_session", counting)
    assert run(argv) == 2
    assert message in capsys.readouterr().err
    assert calls == []


def test_missing_credentials_and_region_are_named(monkeypatch, tmp_path, capsys):
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for key in (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    argv = ["train", "rcf", "--role", ROLE, "--bucket", "b-1"]
    assert run(argv) == 2
    assert "missing AWS region" in capsys.readouterr().err
    assert run([*argv, "--region", "eu-west-1"]) == 2
    assert "no AWS credentials found" in capsys.readouterr().err


def test_estimate_cost_prints_the_table(capsys):
    assert run(["estimate-cost", "--endpoints", "rcf", "--price", "ml.c5.xlarge=0.5"]) == 0
    out = capsys.readouterr().out
    assert "rcf endpoint" in out and "0.500" in out and "12.00" in out and "approximate" in out
    assert "deepar endpoint" not in out


def test_registered_in_the_main_cli(capsys):
    from clickstream_anomaly.cli import main

    assert main(["sagemaker", "estimate-cost", "--endpoints", "deepar"]) == 0
    assert "deepar endpoint" in capsys.readouterr().out
    assert main(["sagemaker", "train", "rcf", "--bucket", "b-1"]) == 2
    assert "missing SageMaker execution role" in capsys.readouterr().err
