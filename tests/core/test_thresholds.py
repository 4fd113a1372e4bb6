"""Threshold rules: parsing, sigma clipping robustness, percentile, value, best F1."""

import numpy as np
import pytest

from clickstream_anomaly.thresholds import best_f1_threshold, parse_threshold, sigma_threshold


def test_parse_specs():
    assert parse_threshold("sigma:3").spec == "sigma:3"
    assert parse_threshold(" Percentile:99.5 ").param == 99.5
    assert parse_threshold("value:2.6").compute(np.array([1.0])) == 2.6
    assert parse_threshold("f1").kind == "f1"
    for bad in ("sigma", "sigma:x", "median:3", "percentile:100", "sigma:-1"):
        with pytest.raises(ValueError):
            parse_threshold(bad)


def test_sigma_clipping_is_robust_to_the_anomalies_themselves():
    rng = np.random.default_rng(0)
    normal = rng.normal(1.0, 0.1, 1000)
    scores = np.r_[normal, [50.0, 60.0, 70.0]]
    plain = scores.mean() + 3 * scores.std()
    robust = sigma_threshold(scores, 3)
    assert plain > 4.0  # the huge scores inflate the plain rule and would hide anomalies of 2-4
    assert robust < 2.0  # capped at twice the 99th percentile, they cannot
    assert (normal < robust).mean() > 0.99 and (scores[-3:] > robust).all()
    # for symmetric scores the upper semi-deviation is the standard deviation: the documented rule
    assert sigma_threshold(normal, 3) == pytest.approx(normal.mean() + 3 * normal.std(), rel=0.02)


def test_sigma_follows_the_long_right_tail_of_skewed_scores():
    rng = np.random.default_rng(1)
    skewed = rng.lognormal(0.0, 0.5, 20000)  # right-skewed like RCF scores
    plain = skewed.mean() + 3 * skewed.std()
    ours = sigma_threshold(skewed, 3)
    assert ours > plain
    assert np.mean(skewed >= ours) < np.mean(skewed >= plain) / 2


def test_warm_up_zeros_are_ignored():
    scores = np.r_[np.zeros(256), np.full(100, 1.0), [1.2]]
    assert parse_threshold("percentile:50").compute(scores) == 1.0


def test_best_f1_on_a_hand_made_case():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.4, 0.8])
    labels = np.array([0, 0, 0, 1, 0, 1])
    threshold, f1, curve = best_f1_threshold(scores, labels)
    assert threshold == 0.8 and f1 == 1.0
    assert len(curve["precision"]) == len(curve["recall"])
    with pytest.raises(ValueError, match="needs labels"):
        parse_threshold("f1").compute(scores)
