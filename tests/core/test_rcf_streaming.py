"""StreamingRCF: AWS score/attribution invariants, shingling, determinism, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from clickstream_anomaly.rcf import StreamingRCF

SMALL = {"num_trees": 10, "sample_size": 32}
FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


def streams(min_rows: int = 20, max_rows: int = 80, dims: tuple[int, int] = (1, 4)):
    return st.integers(*dims).flatmap(
        lambda d: arrays(
            np.float64,
            st.tuples(st.integers(min_rows, max_rows), st.just(d)),
            elements=st.one_of(finite, st.sampled_from([0.0, 1.0, -1.0])),
        )
    )


def _state_snapshot(model: StreamingRCF) -> bytes:
    return model.to_bytes()


def _sine_stream(n: int, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return np.sin(t / 15.0 + np.arange(d)) + rng.normal(0, 0.1, (n, d))


@FAST
@given(X=streams(), seed=st.integers(0, 2**31 - 1))
def test_scores_nonnegative_and_attribution_sums_to_score(X: np.ndarray, seed: int) -> None:
    model = StreamingRCF(dimensions=X.shape[1], output_after=5, random_state=seed, **SMALL)
    scores, high, low = model.process(X)
    assert scores.shape == (X.shape[0],)
    assert high.shape == low.shape == X.shape
    assert (scores >= 0).all() and (high >= 0).all() and (low >= 0).all()
    assert (scores[:5] == 0).all()
    total = high.sum(axis=1) + low.sum(axis=1)
    np.testing.assert_allclose(total, scores, rtol=1e-9, atol=1e-300)


@FAST
@given(X=streams(min_rows=10, max_rows=50, dims=(1, 3)), s=st.integers(2, 4), seed=st.integers(0, 10**6))
def test_internal_shingling_equals_manual_shingling(X: np.ndarray, s: int, seed: int) -> None:
    d = X.shape[1]
    inner = StreamingRCF(dimensions=d, shingle_size=s, output_after=3, random_state=seed, **SMALL)
    sc1, hi1, lo1 = inner.process(X)
    manual = np.lib.stride_tricks.sliding_window_view(X, (s, d))[:, 0].reshape(-1, s * d)
    outer = StreamingRCF(dimensions=d * s, shingle_size=1, output_after=3, random_state=seed, **SMALL)
    sc2, hi2, lo2 = outer.process(manual)
    assert (sc1[: s - 1] == 0).all()
    np.testing.assert_array_equal(sc1[s - 1 :], sc2)
    np.testing.assert_array_equal(hi1[s - 1 :], hi2)
    np.testing.assert_array_equal(lo1[s - 1 :], lo2)


@FAST
@given(X=streams(min_rows=10, max_rows=60), seed=st.integers(0, 10**6), cut=st.integers(0, 60))
def test_determinism_and_split_processing(X: np.ndarray, seed: int, cut: int) -> None:
    a = StreamingRCF(dimensions=X.shape[1], output_after=4, random_state=seed, **SMALL)
    b = StreamingRCF(dimensions=X.shape[1], output_after=4, random_state=seed, **SMALL)
    sa, ha, la = a.process(X)
    cut = min(cut, X.shape[0] - 1)
    parts = [b.process(X[:cut]) if cut else None, b.process(X[cut:])]
    kept = [p for p in parts if p is not None]
    np.testing.assert_array_equal(sa, np.concatenate([p[0] for p in kept]))
    np.testing.assert_array_equal(ha, np.concatenate([p[1] for p in kept]))
    np.testing.assert_array_equal(la, np.concatenate([p[2] for p in kept]))
    assert a.to_bytes() == b.to_bytes()


@FAST
@given(X=streams(min_rows=30, max_rows=80), Y=streams(min_rows=5, max_rows=30), seed=st.integers(0, 10**6))
def test_save_load_continues_identically(
    tmp_path_factory: pytest.TempPathFactory, X: np.ndarray, Y: np.ndarray, seed: int
) -> None:
    d = X.shape[1]
    Y = np.resize(Y, (Y.shape[0], d))
    model = StreamingRCF(dimensions=d, shingle_size=2, output_after=8, random_state=seed, **SMALL)
    model.process(X)
    path = tmp_path_factory.mktemp("rcf") / "model.npz"
    model.save(path)
    restored = StreamingRCF.load(path)
    assert restored.entries_seen == model.entries_seen and restored.inputs_seen == model.inputs_seen
    s1, h1, l1 = model.process(Y)
    s2, h2, l2 = restored.process(Y)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(h1, h2)
    np.testing.assert_array_equal(l1, l2)


def test_score_then_update_matches_point_api() -> None:
    X = _sine_stream(200)
    a = StreamingRCF(dimensions=3, random_state=7, **SMALL)
    b = StreamingRCF(dimensions=3, random_state=7, **SMALL)
    scores, high, low = a.process(X)
    for i, x in enumerate(X):
        assert b.score(x) == scores[i]
        h, lo = b.attribution(x)
        np.testing.assert_array_equal(h, high[i])
        np.testing.assert_array_equal(lo, low[i])
        b.update(x)
    more = _sine_stream(50, seed=5)
    np.testing.assert_array_equal(a.process(more)[0], b.process(more)[0])


def test_output_after_and_defaults() -> None:
    m = StreamingRCF(dimensions=2, sample_size=40, num_trees=5, random_state=0)
    scores, _, _ = m.process(_sine_stream(30, 2))  # the defaults are resolved when the stream starts
    assert m.output_after_ == 10 and m.time_decay_ == pytest.approx(1 / 400)
    assert (scores[:10] == 0).all() and (scores[10:] > 0).all()


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    dim=st.integers(0, 2),
    sign=st.sampled_from([1.0, -1.0]),
    shift=st.floats(8.0, 50.0),
    row=st.integers(300, 599),
)
def test_duplicate_scores_low_and_far_outlier_scores_high_with_right_attribution(
    seed: int, dim: int, sign: float, shift: float, row: int
) -> None:
    X = _sine_stream(600, 3, seed=seed % 7)
    m = StreamingRCF(dimensions=3, num_trees=30, sample_size=64, random_state=seed)
    scores, _, _ = m.process(X)
    inlier_median = float(np.median(scores[200:]))
    assert 0.5 < inlier_median < 1.1  # AWS scale: inliers around 0.7-1
    fresh = X[row] + 0.05
    before = m.score(fresh)
    # a full time-decayed sample takes about sample_size * time_decay = 10 % of arrivals, so 100 repeats
    # put about 10 copies of the point in every tree's sample
    m.process_scores(np.repeat(fresh[None, :], 100, axis=0))
    assert m.score(fresh) < min(before, inlier_median)  # a repeated value is no anomaly
    q = X[row].copy()
    q[dim] += sign * shift
    s = m.score(q)
    assert s > 2.0  # a clear anomaly on the AWS scale
    high, low = m.attribution(q)
    assert int(np.argmax(np.concatenate([high, low]))) == (dim if sign > 0 else 3 + dim)
    assert (high if sign > 0 else low)[dim] > 0.8 * s


def test_per_column_sums_shingle_blocks() -> None:
    m = StreamingRCF(dimensions=2, shingle_size=3, num_trees=5, sample_size=16, random_state=0)
    v = np.arange(6.0)
    np.testing.assert_array_equal(m.per_column(v), [0 + 2 + 4, 1 + 3 + 5])


def test_time_decay_zero_is_uniform_reservoir_and_decay_forgets() -> None:
    rng = np.random.default_rng(0)
    old = rng.normal(0, 0.1, (400, 1))
    new = rng.normal(10, 0.1, (400, 1))
    fast = StreamingRCF(dimensions=1, num_trees=20, sample_size=32, time_decay=0.05, random_state=1)
    keep = StreamingRCF(dimensions=1, num_trees=20, sample_size=32, time_decay=0.0, random_state=1)
    for m in (fast, keep):
        m.process(old)
        m.process(new)
    # with fast decay the old regime is forgotten; a uniform reservoir still holds about half of it
    assert fast.score([0.0]) > keep.score([0.0])


@pytest.mark.parametrize(
    "bad, msg",
    [
        ([[1.0, np.nan]], "non-finite"),
        ([[1.0, np.inf]], "non-finite"),
        ([[1.0, 2.0, 3.0]], "dimensions"),
        (np.zeros((0, 2)), "empty"),
        ([["a", "b"]], "non-numeric"),
        ([[1.0, 2.0], [3.0, np.nan]], "non-finite"),
        ([[1e39, 0.0]], "float32 range"),
    ],
)
def test_bad_input_raises_and_leaves_state_unchanged(bad: object, msg: str) -> None:
    m = StreamingRCF(dimensions=2, random_state=0, **SMALL)
    m.process(_sine_stream(50, 2))
    before = _state_snapshot(m)
    with pytest.raises(ValueError, match=msg):
        m.process(bad)
    assert _state_snapshot(m) == before
    point = np.asarray(bad, dtype=object)[0] if len(bad) else []
    for fn in (m.update, m.score, m.attribution):
        with pytest.raises(ValueError):
            fn(point if len(bad) == 1 else [1.0, np.nan])
    assert _state_snapshot(m) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dimensions": 0},
        {"dimensions": 2, "num_trees": 0},
        {"dimensions": 2, "sample_size": -1},
        {"dimensions": 2, "time_decay": -0.1},
        {"dimensions": 2, "shingle_size": 0},
        {"dimensions": 2, "output_after": -1},
        {"dimensions": 2.5},
        {"dimensions": 2, "random_state": "x"},
        {"dimensions": 2, "bounding_box_cache_fraction": 1.5},
        {"dimensions": 2, "bounding_box_cache_fraction": "all"},
    ],
)
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        StreamingRCF(**kwargs).fit(np.zeros((5, 2)))  # the constructor only stores; the stream's start checks


def test_load_rejects_foreign_bytes() -> None:
    with pytest.raises(ValueError):
        StreamingRCF.from_bytes(b"not a model")
