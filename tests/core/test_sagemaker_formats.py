"""The SageMaker wire formats, defined once."""

import json

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly import sagemaker_formats as f


def test_rcf_csvs():
    x = np.array([[1, 2.5], [3, 4]])
    assert f.rcf_training_csv(x) == "1,2.5\n3,4\n"
    assert f.rcf_test_csv(x, [0, 1]) == "0,1,2.5\n1,3,4\n"
    with pytest.raises(ValueError):
        f.rcf_test_csv(x, [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        f.rcf_training_csv(np.array([[np.nan]]))
    z = np.random.default_rng(0).normal(size=(50, 4))
    assert np.array_equal(f.parse_rcf_request(f.rcf_request_body(z)), z)  # lossless round trip
    with pytest.raises(ValueError, match="not an RCF CSV"):
        f.parse_rcf_request("1,x\n")
    scores = f.parse_rcf_response(f.rcf_response_body([0.5, 2.75]), expected=2)
    assert scores.tolist() == [0.5, 2.75]
    with pytest.raises(ValueError, match="returned 2 scores for 3"):
        f.parse_rcf_response(f.rcf_response_body([0.5, 2.75]), expected=3)


def test_deepar_records_split_and_jsonlines():
    w = pd.DataFrame(
        {
            "window_start": pd.date_range("2020-07-07", periods=5, freq="10min", tz="UTC"),
            "clicks": [1.0, np.nan, 3.0, 4.0, 5.0],
        }
    )
    rec = f.series_from_windows(w)
    assert rec == {"start": "2020-07-07 00:00:00", "target": [1.0, "NaN", 3.0, 4.0, 5.0]}
    train, test = f.train_test_split(rec, 2)
    assert train["target"] == [1.0, "NaN", 3.0] and test["target"] == rec["target"]
    text = f.to_jsonlines([train, test])
    assert text.count("\n") == 2 and f.from_jsonlines(text) == [train, test]
    assert np.isnan(f.target_array(train)[1])
    with pytest.raises(ValueError, match="too short"):
        f.train_test_split(rec, 5)


def test_deepar_request_response():
    req = f.deepar_request(
        [{"start": "2020-07-07 00:00:00", "target": [1, 2]}], num_samples=50, quantiles=[0.01, 0.5, 0.99]
    )
    assert req["configuration"]["quantiles"] == ["0.01", "0.5", "0.99"]
    _instances, conf = f.parse_deepar_request(json.dumps(req))
    samples = np.arange(12, dtype=float).reshape(4, 3)
    pred = f.deepar_prediction(samples, {**conf, "output_types": ["mean", "quantiles", "samples"]})
    assert pred["mean"] == [4.5, 5.5, 6.5] and set(pred["quantiles"]) == {"0.01", "0.5", "0.99"}
    parsed = f.parse_deepar_response(json.dumps({"predictions": [pred]}))
    assert parsed[0]["quantiles"]["0.5"].tolist() == [4.5, 5.5, 6.5]
    with pytest.raises(ValueError, match="output type"):
        f.deepar_request([], output_types=["median"])
