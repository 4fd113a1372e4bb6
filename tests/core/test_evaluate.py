"""Metrics on a tiny labelled case computed by hand; threshold table; joining on window_start."""

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.detectors import detections_from_scores
from clickstream_anomaly.evaluate import evaluate, metrics_for, metrics_table, percentile_table, threshold_table


def windows(n):
    return pd.DataFrame(
        {
            "window_start": pd.date_range("2020-07-15", periods=n, freq="10min", tz="UTC"),
            "urls": 1,
            "users": 1,
            "clicks": 1,
            "residual": 0.0,
        }
    )


def test_metrics_by_hand():
    # scores 0.1..0.6; predicted = score >= 0.45 -> windows 4, 5 (0-based); labels: windows 3 and 5
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    predicted = scores >= 0.45
    labels = np.array([0, 0, 0, 1, 0, 1])
    m = metrics_for(scores, predicted, labels)
    assert m["confusion_matrix"] == {"tn": 3, "fp": 1, "fn": 1, "tp": 1}
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    # AUC by hand: pairs (pos, neg) with pos > neg: 0.4 beats 3 of 4 negatives, 0.6 beats all 4 -> 7/8
    assert m["roc_auc"] == pytest.approx(7 / 8)


def test_evaluate_joins_labels_and_skips_unscored_windows():
    w = windows(6)
    dets = detections_from_scores(w.iloc[2:], np.array([0.3, 0.9, 0.5, 0.6]), "rcf-batch", 0.55)
    labels = pd.DataFrame({"window_start": w["window_start"], "is_anomaly": [1, 0, 0, 1, 0, 1]})
    out = evaluate(dets, labels)["rcf-batch"]
    assert out["windows"] == 4  # the two unscored windows are not counted
    assert out["confusion_matrix"] == {"tn": 2, "fp": 0, "fn": 0, "tp": 2}
    assert out["threshold"] == 0.55
    assert "rcf-batch" in metrics_table({"rcf-batch": out})
    lines = percentile_table({"rcf-batch": out}).splitlines()
    assert lines[0].split()[:3] == ["detector", "percentile", "threshold"] and len(lines) == 1 + 7


def test_threshold_table_rows():
    scores = np.arange(1, 101, dtype=float)
    labels = (scores > 98).astype(int)
    rows = threshold_table(scores, labels, percentiles=(50.0, 98.0))
    assert rows[0]["recall"] == 1.0 and rows[0]["flagged"] == 50  # percentile 50 of 1..100 is 50.5
    assert rows[1]["precision"] == 1.0 and rows[1]["flagged"] == 2  # percentile 98 is 98.02
