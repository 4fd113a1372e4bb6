"""The forest's compact state: the partial bounding-box cache changes memory and speed, never a result;
sampler weights stay exact over long streams; version-1 states are converted and continue the stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream_anomaly.rcf import RandomCutForest, StreamingRCF
from clickstream_anomaly.rcf.sampler import REBASE_SPAN

DATA = Path(__file__).parent / "data"
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stream(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.sin(np.arange(n)[:, None] / 20.0 + np.arange(d)) * 3 + rng.normal(0, 0.3, (n, d))
    X[rng.integers(0, n, size=max(1, n // 50))] += rng.normal(0, 8, d)  # a few outliers
    return X


@FAST
@given(
    seed=st.integers(0, 10**6),
    d=st.integers(1, 5),
    shingle=st.integers(1, 3),
    fraction=st.sampled_from([0.0, 0.1, 0.3, 0.5]),
)
def test_box_cache_fraction_never_changes_scores_or_attribution(
    seed: int, d: int, shingle: int, fraction: float
) -> None:
    X = _stream(400, d, seed)
    kw = {"num_trees": 8, "sample_size": 32, "shingle_size": shingle, "random_state": seed}
    full = StreamingRCF(dimensions=d, bounding_box_cache_fraction=1.0, **kw).process(X)
    part = StreamingRCF(dimensions=d, bounding_box_cache_fraction=fraction, **kw).process(X)
    for a, b in zip(full, part, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fraction", [0.0, 0.3])
def test_batch_forest_box_cache_fraction_never_changes_scores(fraction: float) -> None:
    X = _stream(2000, 3, 1)
    full = RandomCutForest(num_trees=20, num_samples_per_tree=64, random_state=3, bounding_box_cache_fraction=1.0).fit(
        X
    )
    part = RandomCutForest(
        num_trees=20, num_samples_per_tree=64, random_state=3, bounding_box_cache_fraction=fraction
    ).fit(X)
    np.testing.assert_array_equal(full.score(X), part.score(X))
    for a, b in zip(full.attribution(X[:50]), part.attribution(X[:50]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert part.nbytes() < full.nbytes()


@pytest.mark.slow
def test_default_forest_fits_in_one_megabyte_on_a_long_stream() -> None:
    """The issue's budget: 100 trees x 256 samples at d = 4 hold at most 1 MB once the store is full."""
    m = StreamingRCF(dimensions=4, num_trees=100, sample_size=256, random_state=0)
    m.process_scores(_stream(12_000, 4, 0))
    assert m.nbytes() <= 1_000_000
    assert m._forest.nodes.left.dtype == np.int16
    full = StreamingRCF(dimensions=4, num_trees=100, sample_size=256, random_state=0, bounding_box_cache_fraction=1.0)
    full.process_scores(_stream(12_000, 4, 0))
    assert full.nbytes() - m.nbytes() == 100 * (256 - 77) * 2 * 4 * 4  # the uncached float32 boxes


def test_point_store_never_grows_beyond_every_sample_plus_one() -> None:
    m = StreamingRCF(dimensions=2, num_trees=3, sample_size=8, time_decay=0.0, random_state=1)
    m.process_scores(np.random.default_rng(0).normal(size=(3000, 2)))
    assert m._forest.store.points.shape[0] <= 3 * 8 + 1


def test_sampler_weights_are_rebased_and_stay_a_valid_heap() -> None:
    lam = 0.05  # a re-base every REBASE_SPAN / lam = 1 280 arrivals
    m = StreamingRCF(dimensions=2, num_trees=4, sample_size=16, time_decay=lam, random_state=2)
    m.process_scores(_stream(6000, 2, 2))
    sampler = m._forest.sampler
    assert sampler.weight_base[0] > 6000 - REBASE_SPAN / lam
    for t in range(4):
        size = int(sampler.size[t])
        keys = sampler.weight[t, :size].astype(np.float64)
        assert np.all(np.isfinite(keys)) and np.abs(keys).max() < REBASE_SPAN + 40
        for j in range(1, size):
            assert keys[(j - 1) // 2] >= keys[j]  # max-heap: the root is the next to leave


def test_version_1_states_are_converted_and_continue_the_stream() -> None:
    expected = np.load(DATA / "rcf_v1_expected.npz")
    X = expected["X"]
    m = StreamingRCF.from_bytes((DATA / "rcf_streaming_v1.npz").read_bytes())
    assert m.entries_seen == 399 and m.bounding_box_cache_fraction == pytest.approx(0.3)
    scores, high, low = m.process(X[400:])
    np.testing.assert_allclose(scores, expected["stream_scores"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, expected["stream_high"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(low, expected["stream_low"], rtol=0, atol=1e-12)
    b = RandomCutForest.from_bytes((DATA / "rcf_batch_v1.npz").read_bytes())
    np.testing.assert_array_equal(b.score(X[400:]), expected["batch_scores"])
    # once re-saved, the state is in the current layout
    again = StreamingRCF.from_bytes(m.to_bytes())
    assert again._forest.sampler.weight.dtype == np.float32


def test_unknown_state_version_is_rejected_clearly() -> None:
    import io
    import json

    from clickstream_anomaly import persist
    from clickstream_anomaly.rcf import state

    current = persist.dumps(state.state_kind("StreamingRCF"), 9, {}, {})
    header = json.dumps({"format": state.LEGACY_FORMAT, "version": 9, "kind": "StreamingRCF", "params": {}})
    buf = io.BytesIO()
    np.savez_compressed(buf, __header__=np.frombuffer(header.encode(), dtype=np.uint8))
    for bumped in (current, buf.getvalue()):
        with pytest.raises(ValueError, match="version 9"):
            StreamingRCF.from_bytes(bumped)
