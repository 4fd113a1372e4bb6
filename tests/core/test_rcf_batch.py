"""RandomCutForest (batch, SageMaker semantics): score scale, determinism, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from clickstream_anomaly.rcf import RandomCutForest
from clickstream_anomaly.rcf import forest as forest_module
from clickstream_anomaly.rcf.executor import stream_process
from clickstream_anomaly.rcf.forest import locality_order
from clickstream_anomaly.validation import as_matrix, float32_values


def _data(n: int = 2000, d: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_scores_on_aws_scale_and_outliers_rank_first() -> None:
    X = _data()
    outliers = np.array([[6.0, 0.0, 0.0], [0.0, -6.0, 0.0], [5.0, 5.0, -5.0]])
    model = RandomCutForest(num_trees=50, num_samples_per_tree=256, random_state=0).fit(X)
    inl = model.score(X)
    out = model.score(outliers)
    assert inl.dtype == np.float64 and inl.shape == (2000,)
    assert 0.5 < np.median(inl) < 1.1
    assert (out > 2.0).all()
    assert out.min() > np.quantile(inl, 0.999)


def test_attribution_sums_to_score_and_names_the_dimension() -> None:
    X = _data()
    model = RandomCutForest(num_trees=30, num_samples_per_tree=128, random_state=1).fit(X)
    q = np.array([[0.0, 0.0, -7.0], [0.1, 0.2, 0.3]])
    high, low = model.attribution(q)
    np.testing.assert_allclose(high.sum(1) + low.sum(1), model.score(q), rtol=1e-9)
    assert low[0, 2] > 0.8 * model.score(q)[0]


def test_duplicate_training_point_scores_lower_than_new_nearby_point() -> None:
    X = _data(300, 2, seed=2)
    model = RandomCutForest(num_trees=50, num_samples_per_tree=300, random_state=2).fit(X)
    seen = model.score(X[:20])
    unseen = model.score(X[:20] + 1e-3)
    assert (seen < unseen).mean() > 0.9


def _row_by_row_scores(model: RandomCutForest, Q: np.ndarray) -> np.ndarray:
    """The one-point-at-a-time scorer (forest_visit, as used by streaming and attribution)."""
    Q = as_matrix(Q, model.n_features_in_, cast=float32_values)
    scores = np.zeros(Q.shape[0])
    unused = np.zeros((1, Q.shape[1]))
    stream_process(model._forest, Q, 0.0, 0, True, False, False, scores, unused, unused)
    return scores


@pytest.mark.parametrize("n_fit, d, trees, sample", [(2000, 3, 12, 64), (5, 2, 4, 256), (1, 1, 3, 8)])
def test_batch_score_equals_row_by_row_visit(
    n_fit: int, d: int, trees: int, sample: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the batch kernel (rows in blocks, descended 8 at a time, float64 tables) must give exactly the
    # row-by-row visitor's values: several blocks, a ragged last group, duplicates and far outliers
    rng = np.random.default_rng(n_fit)
    X = rng.normal(size=(n_fit, d))
    Q = np.vstack([X, X[:7], rng.normal(size=(2100, d)) * 3, rng.integers(-1, 2, size=(13, d))])
    model = RandomCutForest(num_trees=trees, num_samples_per_tree=sample, random_state=3).fit(X)
    expected = _row_by_row_scores(model, Q)
    np.testing.assert_array_equal(model.score(Q), expected)
    # tables made a few trees at a time (as for big forests) give the same values
    monkeypatch.setattr(forest_module, "_TABLE_BYTES", 1)
    np.testing.assert_array_equal(model.score(Q), expected)


@settings(max_examples=10, deadline=None)
@given(
    X=arrays(
        np.float64, st.tuples(st.integers(1, 40), st.integers(1, 3)), elements=st.floats(-100, 100, allow_nan=False)
    ),
    seed=st.integers(0, 1000),
)
def test_determinism_nonnegative_and_small_inputs(X: np.ndarray, seed: int) -> None:
    a = RandomCutForest(num_trees=7, num_samples_per_tree=16, random_state=seed).fit(X).score(X)
    b = RandomCutForest(num_trees=7, num_samples_per_tree=16, random_state=seed).fit(X).score(X)
    np.testing.assert_array_equal(a, b)
    assert (a >= 0).all() and np.isfinite(a).all()


def test_save_load_roundtrip(tmp_path) -> None:
    X = _data(500)
    model = RandomCutForest(num_trees=20, num_samples_per_tree=64, random_state=4).fit(X)
    path = tmp_path / "rcf.npz"
    model.save(path)
    again = RandomCutForest.load(path)
    Y = _data(100, seed=9) * 3
    np.testing.assert_array_equal(model.score(Y), again.score(Y))
    assert again.num_trees == 20 and again.num_samples_per_tree == 64


def test_any_positive_sizes_accepted() -> None:
    X = _data(50)
    assert RandomCutForest(num_trees=1, num_samples_per_tree=1, random_state=0).fit(X).score(X).shape == (50,)
    assert RandomCutForest(num_trees=3, num_samples_per_tree=5000, random_state=0).fit(X).score(X).shape == (50,)


@pytest.mark.parametrize(
    "kwargs", [{"num_trees": 0}, {"num_samples_per_tree": -3}, {"num_trees": 2.0}, {"random_state": "seed"}]
)
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RandomCutForest(**kwargs).fit(_data(20))  # the constructor only stores; fit checks


def test_bad_input() -> None:
    model = RandomCutForest(num_trees=5, num_samples_per_tree=16, random_state=0)
    with pytest.raises(ValueError, match="not fitted"):
        model.score([[1.0, 2.0]])
    with pytest.raises(ValueError, match="empty"):
        model.fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        model.fit([[1.0, np.nan]])
    model.fit(_data(100, 2))
    with pytest.raises(ValueError, match="dimensions"):
        model.score([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="non-numeric"):
        model.score([["a", "b"]])
    with pytest.raises(ValueError, match="non-finite"):
        model.score([[np.inf, 0.0]])


def test_large_batches_are_scored_in_locality_order_with_the_same_scores() -> None:
    X = _data(9000, 3, seed=5)
    X[::7, 1] = 0.0  # ties and a constant stretch do not break the ordering
    model = RandomCutForest(num_trees=20, num_samples_per_tree=64, random_state=5).fit(X[:2000])
    whole = model.score(X)  # >= 4096 rows: permuted internally
    parts = np.concatenate([model.score(X[i : i + 3000]) for i in range(0, 9000, 3000)])  # unpermuted
    np.testing.assert_array_equal(whole, parts)
    order = locality_order(X)
    assert sorted(order.tolist()) == list(range(9000))
