"""Pure validation of SageMaker settings (no AWS): ranges, names, images, prepared bodies, costs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.features import windows_from_frame
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.records import FEATURE_COLUMNS
from clickstream_anomaly.sagemaker_config import (
    DEEPAR_BLOG_HYPERPARAMETERS,
    SageMakerConfigError,
    deepar_hyperparameters,
    rcf_hyperparameters,
    validate_bucket,
    validate_region,
    validate_role_arn,
)


def test_rcf_defaults_are_strings_and_feature_dim_is_required():
    hp = rcf_hyperparameters({"feature_dim": 4})
    assert hp == {"feature_dim": "4", "num_trees": "100", "num_samples_per_tree": "256"}
    assert all(isinstance(v, str) for v in hp.values())
    with pytest.raises(SageMakerConfigError, match="feature_dim"):
        rcf_hyperparameters({})


@pytest.mark.parametrize(
    ("name", "lo", "hi"), [("num_trees", 50, 1000), ("num_samples_per_tree", 1, 2048), ("feature_dim", 1, 10_000)]
)
def test_rcf_ranges_are_inclusive_and_enforced(name, lo, hi):
    base = {"feature_dim": 4}
    assert rcf_hyperparameters({**base, name: lo})[name] == str(lo)
    assert rcf_hyperparameters({**base, name: hi})[name] == str(hi)
    for bad in (lo - 1, hi + 1):
        with pytest.raises(SageMakerConfigError, match=f"{name}={bad} is outside"):
            rcf_hyperparameters({**base, name: bad})


@pytest.mark.parametrize("bad", [2.5, "ten", True, "7x"])
def test_rcf_integers_must_be_integers(bad):
    with pytest.raises(SageMakerConfigError, match="integer"):
        rcf_hyperparameters({"feature_dim": 4, "num_trees": bad})


def test_rcf_eval_metrics_and_unknown_names():
    hp = rcf_hyperparameters({"feature_dim": 4, "eval_metrics": "accuracy,precision_recall_fscore"})
    assert json.loads(hp["eval_metrics"]) == ["accuracy", "precision_recall_fscore"]
    assert json.loads(rcf_hyperparameters({"feature_dim": 4, "eval_metrics": ["accuracy"]})["eval_metrics"]) == [
        "accuracy"
    ]
    with pytest.raises(SageMakerConfigError, match="unknown RCF eval_metrics"):
        rcf_hyperparameters({"feature_dim": 4, "eval_metrics": ["f1"]})
    with pytest.raises(SageMakerConfigError, match="unknown RCF hyperparameter"):
        rcf_hyperparameters({"feature_dim": 4, "num_tree": 100})


def test_deepar_blog_defaults_and_overrides():
    hp = deepar_hyperparameters()
    assert hp["time_freq"] == "10min"
    assert hp["context_length"] == hp["prediction_length"] == "144"
    assert (hp["num_layers"], hp["epochs"], hp["early_stopping_patience"], hp["mini_batch_size"]) == (
        "1",
        "400",
        "40",
        "32",
    )
    assert float(hp["learning_rate"]) == 5e-4
    assert all(isinstance(v, str) for v in hp.values())
    hp2 = deepar_hyperparameters({"epochs": 10, "num_cells": None, "likelihood": "negative-binomial"})
    assert hp2["epochs"] == "10" and hp2["likelihood"] == "negative-binomial" and "num_cells" not in hp2
    assert set(DEEPAR_BLOG_HYPERPARAMETERS) - set(hp2) == {"num_cells"}
    with pytest.raises(SageMakerConfigError, match="time_freq"):
        deepar_hyperparameters({"time_freq": None})
    for bad in ({"time_freq": "7sec"}, {"epochs": 0}, {"likelihood": "poisson"}, {"context_lenght": 10}):
        with pytest.raises(SageMakerConfigError, match="DeepAR hyperparameters"):
            deepar_hyperparameters(bad)


def test_load_windows_accepts_windows_or_clicks(tmp_path):
    from clickstream_anomaly.aws.training.prepare import load_windows
    from clickstream_anomaly.clicks_csv import write_clicks
    from clickstream_anomaly.features import write_windows

    clicks, _ = generate(Scenario(days=1))
    write_clicks(clicks, tmp_path / "clicks.csv")
    write_windows(windows_from_frame(clicks), tmp_path / "windows.csv")
    from_clicks = load_windows(tmp_path / "clicks.csv")
    from_windows = load_windows(tmp_path / "windows.csv")
    assert len(from_clicks) == len(from_windows) == 144
    np.testing.assert_allclose(from_clicks[list(FEATURE_COLUMNS)], from_windows[list(FEATURE_COLUMNS)])


@pytest.mark.parametrize(
    ("func", "value", "match"),
    [
        (validate_role_arn, None, "missing SageMaker execution role"),
        (validate_role_arn, "MyRole", "not an IAM role ARN"),
        (validate_bucket, "", "missing S3 bucket"),
        (validate_bucket, "s3://bucket", "not a URI"),
        (validate_bucket, "Bad_Bucket", "not a valid S3 bucket"),
        (validate_region, None, "missing AWS region"),
        (validate_region, "useast1", "not an AWS region"),
    ],
)
def test_names_are_checked(func, value, match):
    with pytest.raises(SageMakerConfigError, match=match):
        func(value)
    assert validate_role_arn("arn:aws:iam::123456789012:role/service-role/SM").endswith("/SM")


def test_prepared_bodies_use_the_core_formats():
    from clickstream_anomaly.aws.training.prepare import Scaling, build_datasets

    clicks, labels = generate(Scenario(start="2020-07-13", days=4))
    windows = windows_from_frame(clicks)
    sets = {d.name: d for d in build_datasets(windows, labels, prediction_length=144)}
    train = np.loadtxt(sets["rcf-train"].body.splitlines(), delimiter=",")
    assert train.shape == (len(windows), 4)
    scaling = Scaling.from_json(sets["rcf-scaling"].body)
    clicks_raw = windows["clicks"].to_numpy()
    assert scaling.center[2] == np.median(clicks_raw)
    np.testing.assert_allclose(train[:, 2] * scaling.scale[2] + scaling.center[2], clicks_raw, atol=1e-6)
    test = np.loadtxt(sets["rcf-test"].body.splitlines(), delimiter=",")
    assert test.shape == (len(windows), 5)
    np.testing.assert_array_equal(test[:, 1:], train)
    assert test[:, 0].sum() == labels.set_index("window_start").loc[windows["window_start"], "is_anomaly"].sum()
    assert test[:, 0].sum() > 0  # the blog incidents fall in these four days
    assert sets["rcf-train"].content_type == "text/csv;label_size=0"
    assert sets["rcf-test"].content_type == "text/csv;label_size=1"
    (train_rec,) = fmt.from_jsonlines(sets["deepar-train"].body)
    (test_rec,) = fmt.from_jsonlines(sets["deepar-test"].body)
    assert len(test_rec["target"]) == len(windows) and len(train_rec["target"]) == len(windows) - 144
    assert train_rec["start"] == "2020-07-13 00:00:00"
    assert "rcf-test" not in {d.name for d in build_datasets(windows)}
    assert [d.name for d in build_datasets(windows, include_deepar=False)] == ["rcf-train", "rcf-scaling"]
    raw = build_datasets(windows, include_deepar=False, scaling=Scaling.identity())[0].body
    np.testing.assert_allclose(np.loadtxt(raw.splitlines(), delimiter=","), windows[list(FEATURE_COLUMNS)], rtol=1e-9)


def test_deepar_needs_300_training_points():
    from clickstream_anomaly.aws.training.prepare import build_datasets

    windows = windows_from_frame(generate(Scenario(days=2))[0])  # 288 windows
    with pytest.raises(SageMakerConfigError, match="at least 300"):
        build_datasets(windows, prediction_length=144)
    assert len(build_datasets(windows, include_deepar=False)) == 2


def test_costs_from_the_table_and_overrides():
    from clickstream_anomaly.aws.training.costs import (
        PRICES_USD_PER_HOUR,
        endpoint_cost,
        parse_price_overrides,
        training_cost,
    )

    line = endpoint_cost("rcf endpoint", "ml.c5.xlarge", 2)
    assert line.usd_per_hour == pytest.approx(2 * PRICES_USD_PER_HOUR["ml.c5.xlarge"])
    assert line.usd_per_day == pytest.approx(24 * line.usd_per_hour)
    over = parse_price_overrides(["ml.c5.xlarge=1.5", "ml.x9.huge=2"])
    assert endpoint_cost("x", "ml.c5.xlarge", 1, over).usd_per_hour == 1.5
    assert training_cost("ml.x9.huge", 0.5, 1, over) == 1.0
    with pytest.raises(SageMakerConfigError, match="no price"):
        endpoint_cost("x", "ml.x9.huge")
    with pytest.raises(SageMakerConfigError, match="INSTANCE=USD"):
        parse_price_overrides(["ml.c5.xlarge"])
