"""Endpoint-backed detectors: canned moto endpoint responses parsed into detections, and the local
transport giving the same records as the local detectors."""

from __future__ import annotations

import json

import boto3
import numpy as np
import pytest
import requests
from moto import mock_aws

from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.aws.training import local
from clickstream_anomaly.aws.training.invoke import DeepAREndpointDetector, EndpointTransport, RCFEndpointDetector
from clickstream_anomaly.aws.training.prepare import Scaling
from clickstream_anomaly.detectors import BatchRCFDetector, DeepARDetector, deviation_explanation
from clickstream_anomaly.features import windows_from_frame
from clickstream_anomaly.generator import Scenario, generate
from clickstream_anomaly.thresholds import parse_threshold

REGION = "us-east-1"
CANNED_URL = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"


@pytest.fixture(scope="module")
def windows():
    return windows_from_frame(generate(Scenario(start="2020-07-13", days=4))[0])


@pytest.fixture
def runtime(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("sagemaker-runtime", region_name=REGION)


def _queue(bodies, content_type="application/json"):
    results = [
        {"Body": b, "ContentType": content_type, "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""}
        for b in bodies
    ]
    resp = requests.post(CANNED_URL, json={"results": results, "region": REGION}, timeout=10)
    assert resp.status_code == 201, resp.text


def test_rcf_endpoint_scores_become_detections(runtime, windows):
    rng = np.random.default_rng(1)
    scores = rng.gamma(9.0, 0.1, len(windows))
    scores[[100, 101, 400]] = [4.0, 3.5, 5.0]
    batch = 250
    _queue([fmt.rcf_response_body(scores[i : i + batch]) for i in range(0, len(windows), batch)])
    sent = []
    runtime.meta.events.register(
        "before-call.sagemaker-runtime.InvokeEndpoint", lambda params, **_: sent.append(params)
    )
    scaling = Scaling.fit(windows)
    transport = EndpointTransport(runtime, "clickstream-anomaly-rcf")
    dets = RCFEndpointDetector(transport, scaling=scaling, batch_size=batch).detect(windows)

    assert transport.calls == len(sent) == 3
    assert sent[0]["headers"]["Content-Type"] == "text/csv"
    assert sent[0]["url_path"].endswith("/endpoints/clickstream-anomaly-rcf/invocations")
    first_rows = np.loadtxt(sent[0]["body"].decode().splitlines(), delimiter=",")
    np.testing.assert_allclose(first_rows, scaling.apply(windows)[:batch], rtol=1e-9)
    np.testing.assert_array_equal([d.score for d in dets], scores)
    threshold = parse_threshold("sigma:3").compute(scores)
    assert {d.threshold for d in dets} == {threshold}
    assert [i for i, d in enumerate(dets) if d.is_anomaly] == list(np.flatnonzero(scores >= threshold))
    assert {100, 101, 400} <= {i for i, d in enumerate(dets) if d.is_anomaly}
    attr, direction, _ = deviation_explanation(scaling.apply(windows)[400], scaling.columns)
    assert dets[400].attribution == attr and dets[400].direction == direction
    assert dets[0].detector == "rcf-batch"
    assert dets[5].window.clicks == windows["clicks"].iloc[5]


def test_rcf_endpoint_with_wrong_count_is_an_error(runtime, windows):
    _queue([fmt.rcf_response_body([1.0, 2.0])])
    with pytest.raises(ValueError, match="returned 2 scores for 10 rows"):
        RCFEndpointDetector(EndpointTransport(runtime, "e"), Scaling.fit(windows)).detect(windows.iloc[:10])


def test_deepar_endpoint_forecasts_become_band_detections(runtime, windows):
    P = 144
    hist = len(windows) - 2 * P  # score the last two days in two requests
    truth = windows["clicks"].to_numpy(dtype="float64")
    preds = []
    for b in (hist, hist + P):
        mid = truth[b : b + P].copy()
        mid[10] = truth[b + 10] + 100.0  # the forecast misses this window: it falls below the band
        preds.append({"quantiles": {"0.01": (mid - 5).tolist(), "0.5": mid.tolist(), "0.99": (mid + 5).tolist()}})
    _queue([json.dumps({"predictions": [p]}) for p in preds])
    sent = []
    runtime.meta.events.register(
        "before-call.sagemaker-runtime.InvokeEndpoint", lambda params, **_: sent.append(json.loads(params["body"]))
    )
    det = DeepAREndpointDetector(
        EndpointTransport(runtime, "clickstream-anomaly-deepar"),
        prediction_length=P,
        score_from=windows["window_start"].iloc[hist],
    )
    dets = det.detect(windows)

    assert len(dets) == 2 * P
    assert [d.window.window_start for d in dets] == list(windows["window_start"].iloc[hist:])
    assert len(sent[0]["instances"][0]["target"]) == hist and len(sent[1]["instances"][0]["target"]) == hist + P
    assert sent[0]["instances"][0]["start"] == "2020-07-13 00:00:00"
    assert sent[0]["configuration"]["quantiles"] == ["0.01", "0.5", "0.99"]
    assert [i for i, d in enumerate(dets) if d.is_anomaly] == [10, P + 10]
    low = dets[10]
    assert low.p01 == truth[hist + 10] + 95 and low.p99 == truth[hist + 10] + 105
    assert low.score == pytest.approx(95 / 10)
    assert dets[0].score == 0.0 and dets[0].p50 == truth[hist]


def test_local_rcf_twin_gives_the_local_detector_records(tmp_path, windows):
    # the CSV bodies are lossless (%.17g), so the endpoint scores exactly the values the local detector does
    local.train_rcf(windows, tmp_path, {"num_trees": 50, "num_samples_per_tree": 256})
    local.deploy("rcf", tmp_path)
    endpoint = local.endpoint("rcf", tmp_path)
    mine = RCFEndpointDetector(endpoint, scaling=endpoint.scaling, batch_size=200).detect(windows)
    ref = BatchRCFDetector(num_trees=50, num_samples_per_tree=256, random_state=0).detect(windows)
    assert endpoint.calls == 3
    assert [d.to_row() for d in mine] == [d.to_row() for d in ref]
    assert sum(d.is_anomaly for d in mine) > 0


def test_local_deepar_twin_gives_the_local_detector_records(tmp_path, windows):
    hp = {
        "context_length": 24,
        "prediction_length": 24,
        "epochs": 2,
        "num_cells": 10,
        "likelihood": "negative-binomial",
        "learning_rate": 0.002,
        "early_stopping_patience": None,
    }
    local.train_deepar(windows, tmp_path, hp)
    local.deploy("deepar", tmp_path)
    endpoint = local.endpoint("deepar", tmp_path)
    mine = DeepAREndpointDetector(endpoint, prediction_length=24).detect(windows)
    ref = DeepARDetector(
        context_length=24,
        prediction_length=24,
        epochs=2,
        num_cells=10,
        likelihood="negative-binomial",
        learning_rate=0.002,
        early_stopping_patience=None,
    ).detect(windows)
    assert len(mine) == 24
    assert [d.to_row() for d in mine] == [d.to_row() for d in ref]


def test_local_endpoint_needs_deploy(tmp_path, windows):
    from clickstream_anomaly.sagemaker_config import SageMakerConfigError

    with pytest.raises(SageMakerConfigError, match="run `sagemaker train rcf --local"):
        local.deploy("rcf", tmp_path)
    local.train_rcf(windows, tmp_path, {"num_trees": 50})
    with pytest.raises(SageMakerConfigError, match="run `sagemaker deploy rcf --local"):
        local.endpoint("rcf", tmp_path)


def test_local_rcf_model_holds_the_forest_and_the_old_format_still_loads(tmp_path, windows):
    import json

    import numpy as np

    path = local.train_rcf(windows, tmp_path, {"num_trees": 50, "num_samples_per_tree": 64})
    assert path.name == "rcf-model.bin" and path.read_bytes().startswith(b"CSASTATE")
    body = "\n".join(",".join(f"{v:.17g}" for v in row) for row in np.zeros((3, 4)))
    served = local.LocalRCFEndpoint(path).invoke(body, "text/csv")
    assert served == local.LocalRCFEndpoint(path).invoke(body, "text/csv")  # the same forest every load
    # version 1 kept the training features and regrew the forest
    header = {
        "format": "clickstream-anomaly-local-rcf",
        "version": 1,
        "hyperparameters": {"num_trees": "20", "num_samples_per_tree": "64", "feature_dim": "4"},
        "scaling": json.loads(local.LocalRCFEndpoint(path).scaling.to_json()),
        "random_state": 0,
    }
    legacy = tmp_path / "old" / "rcf-model.npz"
    legacy.parent.mkdir()
    np.savez(legacy, header=np.asarray(json.dumps(header)), train=np.random.default_rng(0).normal(size=(100, 4)))
    assert json.loads(local.LocalRCFEndpoint(legacy.parent / "rcf-model.bin").invoke(body, "text/csv"))["scores"]
