"""RandomCutForest and StreamingRCF as scikit-learn estimators: constructors that only store, clone,
parameter checks when fitting starts, fitted attributes, offset_ / decision_function / predict."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from clickstream_anomaly.base import NotFittedError
from clickstream_anomaly.rcf import RandomCutForest, StreamingRCF
from clickstream_anomaly.thresholds import DEFAULT_THRESHOLD, parse_threshold
from clickstream_anomaly.validation import InvalidParameterError


def _data(n: int = 600, d: int = 2, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, d))
    X[::97] += 6.0  # a few outliers
    return X


SMALL_BATCH = {"num_trees": 20, "num_samples_per_tree": 64, "random_state": 0}
SMALL_STREAM = {"num_trees": 10, "sample_size": 32, "random_state": 0}


@pytest.mark.parametrize(
    "model", [RandomCutForest(num_trees=50), StreamingRCF(dimensions=3, num_trees=10, shingle_size=2)]
)
def test_clone_and_params_round_trip(model) -> None:
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    assert copy.get_params() == model.get_params()
    assert model.set_params(num_trees=7) is model and model.num_trees == 7


@pytest.mark.parametrize("cls", [RandomCutForest, StreamingRCF])
def test_constructor_is_keyword_only_and_only_stores(cls) -> None:
    with pytest.raises(TypeError):
        cls(5)
    model = cls(num_trees=0, random_state="not a seed")  # stored, not checked
    assert vars(model) == model.get_params(deep=False)
    assert model.get_params()["threshold"] == DEFAULT_THRESHOLD
    with pytest.raises(InvalidParameterError, match=f"'num_trees' parameter of {cls.__name__}"):
        model.fit(_data(50))


def test_clone_of_a_fitted_forest_is_unfitted() -> None:
    fitted = RandomCutForest(**SMALL_BATCH).fit(_data())
    fresh = clone(fitted)
    assert not hasattr(fresh, "n_features_in_") and not hasattr(fresh, "offset_")
    with pytest.raises(NotFittedError):
        fresh.score_samples(_data(5))
    np.testing.assert_array_equal(fresh.fit(_data()).score_samples(_data(9)), fitted.score_samples(_data(9)))


def test_batch_fit_returns_self_sets_fitted_attributes_and_refits_identically() -> None:
    X = _data()
    for seed in (3, np.random.SeedSequence(3)):
        model = RandomCutForest(num_trees=20, num_samples_per_tree=64, random_state=seed)
        assert model.fit(X) is model
        first = model.score_samples(X)
        np.testing.assert_array_equal(model.fit(X).score_samples(X), first)  # fitting twice, same forest
    assert model.n_features_in_ == 2 and model.max_samples_ == 64
    assert model.offset_ == pytest.approx(parse_threshold(DEFAULT_THRESHOLD).compute(first))
    np.testing.assert_array_equal(model.fit_score(X), first)
    np.testing.assert_array_equal(model.score(X), first)  # score is score_samples
    assert (
        RandomCutForest(num_trees=20, num_samples_per_tree=64, random_state=np.random.default_rng(1)).fit(X).offset_ > 0
    )


def test_decision_function_and_predict() -> None:
    X = _data()
    model = RandomCutForest(**SMALL_BATCH, threshold="percentile:95").fit(X)
    scores = model.score_samples(X)
    assert model.offset_ == pytest.approx(np.percentile(scores, 95))
    decision = model.decision_function(X)
    np.testing.assert_array_equal(decision, model.offset_ - scores)
    labels = model.predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels == -1, decision <= 0)
    assert 0.04 < (labels == -1).mean() < 0.06
    assert model.predict([[8.0, 8.0]])[0] == -1 and model.predict([[0.0, 0.0]])[0] == 1


def test_threshold_rules_and_labels() -> None:
    X = _data()
    rule = parse_threshold("value:1.5")
    assert RandomCutForest(**SMALL_BATCH, threshold=rule).fit(X).offset_ == 1.5
    y = np.zeros(len(X), dtype=int)
    y[::97] = 1
    f1 = RandomCutForest(**SMALL_BATCH, threshold="f1").fit(X, y)
    assert (f1.predict(X) == -1)[y == 1].all()
    with pytest.raises(ValueError, match="labels"):
        RandomCutForest(**SMALL_BATCH, threshold="f1").fit(X)
    none = RandomCutForest(**SMALL_BATCH, threshold=None).fit(X)
    assert not hasattr(none, "offset_")
    with pytest.raises(NotFittedError, match="no offset_"):
        none.predict(X)
    with pytest.raises(InvalidParameterError, match="'threshold' parameter"):
        RandomCutForest(**SMALL_BATCH, threshold="sigma:-1").fit(X)
    with pytest.raises(InvalidParameterError, match="'threshold' parameter"):
        RandomCutForest(**SMALL_BATCH, threshold=3).fit(X)


def test_batch_save_load_keeps_offset(tmp_path) -> None:
    model = RandomCutForest(**SMALL_BATCH).fit(_data())
    path = tmp_path / "forest.state"
    model.save(path)
    again = RandomCutForest.load(path)
    assert again.offset_ == model.offset_ and again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.predict(_data(50, seed=2)), model.predict(_data(50, seed=2)))


def test_streaming_fit_is_a_fresh_stream_and_sets_offset() -> None:
    X = _data(400)
    model = StreamingRCF(**SMALL_STREAM)
    assert model.fit(X) is model
    expected = StreamingRCF(**SMALL_STREAM).process_scores(X)
    assert model.n_features_in_ == 2 and model.entries_seen == 400
    assert model.offset_ == pytest.approx(parse_threshold(DEFAULT_THRESHOLD).compute(expected))
    state = model.to_bytes()
    assert model.fit(X).to_bytes() == state  # fitting twice starts afresh both times


def test_streaming_score_samples_does_not_update() -> None:
    X = _data(400)
    model = StreamingRCF(**SMALL_STREAM, shingle_size=2).fit(X[:300])
    before = model.to_bytes()
    scores = model.score_samples(X[300:])
    assert model.to_bytes() == before
    # the first row scored without updating is the row that processing would score next
    assert scores[0] == model.process_scores(X[300:301])[0]
    np.testing.assert_array_equal(model.decision_function(X[301:]), model.offset_ - model.score_samples(X[301:]))
    with pytest.raises(NotFittedError):
        StreamingRCF(**SMALL_STREAM).score_samples(X)


def test_streaming_starts_at_first_data_with_inferred_dimensions() -> None:
    model = StreamingRCF(num_trees=5, sample_size=16, random_state=1)
    assert model.entries_seen == 0 and not model.is_output_ready
    assert model.score([1.0, 2.0, 3.0]) == 0.0  # warm-up, and the stream now has 3 dimensions
    assert model.n_features_in_ == 3 and model.output_after_ == 4 and model.time_decay_ == pytest.approx(1 / 160)
    with pytest.raises(ValueError, match="dimensions"):
        model.process(np.zeros((4, 2)))
    with pytest.raises(NotFittedError):
        StreamingRCF().to_bytes()


def test_streaming_save_load_keeps_fitted_values(tmp_path) -> None:
    model = StreamingRCF(**SMALL_STREAM, output_after=5, time_decay=0.01).fit(_data(200))
    model.save(tmp_path / "stream.state")
    again = StreamingRCF.load(tmp_path / "stream.state")
    assert (again.offset_, again.output_after_, again.time_decay_) == (model.offset_, 5, 0.01)
    np.testing.assert_array_equal(again.process_scores(_data(50, seed=4)), model.process_scores(_data(50, seed=4)))
