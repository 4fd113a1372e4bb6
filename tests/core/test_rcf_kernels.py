"""The kernels give exactly the scores and attributions of the code that wrote the reference file
``data/rcf_v2_expected.npz`` (commit 0f1df5b, one ``_kernels.py`` over flat arrays; state format v2),
and their compiled cache is keyed on every module of the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clickstream_anomaly.rcf import COMPILED, RandomCutForest, StreamingRCF, _jit, executor, walks

DATA = Path(__file__).parent / "data"
STREAMS = [
    {"num_trees": 12, "sample_size": 32, "random_state": 1},
    {
        "num_trees": 10,
        "sample_size": 48,
        "shingle_size": 3,
        "time_decay": 0.02,
        "output_after": 5,
        "random_state": 2,
        "bounding_box_cache_fraction": 0.0,
    },
    {"num_trees": 8, "sample_size": 24, "time_decay": 0.0, "random_state": 3, "bounding_box_cache_fraction": 1.0},
]


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(DATA / "rcf_v2_expected.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("case", range(len(STREAMS)))
def test_streaming_scores_and_attribution_are_bit_identical(expected, case: int) -> None:
    scores, high, low = StreamingRCF(dimensions=3, **STREAMS[case]).process(expected["X"])
    np.testing.assert_array_equal(scores, expected[f"stream{case}_scores"])
    np.testing.assert_array_equal(high, expected[f"stream{case}_high"])
    np.testing.assert_array_equal(low, expected[f"stream{case}_low"])


def test_batch_scores_and_attribution_are_bit_identical(expected) -> None:
    X = expected["X"]
    forest = RandomCutForest(num_trees=25, num_samples_per_tree=64, random_state=4).fit(X[:400])
    np.testing.assert_array_equal(forest.score_samples(X), expected["batch_scores"])
    high, low = forest.attribution(X[::3])
    np.testing.assert_array_equal(high, expected["batch_high"])
    np.testing.assert_array_equal(low, expected["batch_low"])
    big = RandomCutForest(num_trees=7, num_samples_per_tree=500, random_state=5, bounding_box_cache_fraction=0.2)
    scores = big.fit(X).score_samples(np.vstack([X] * 8))  # 4 800 rows: scored in locality order
    np.testing.assert_array_equal(scores, np.tile(expected["batch2_scores"], 8))


def test_package_digest_covers_every_module(tmp_path) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    before = _jit.package_digest(tmp_path)
    (tmp_path / "b.py").write_text("x = 2\n")
    assert _jit.package_digest(tmp_path) != before


@pytest.mark.skipif(not COMPILED, reason="numba is not installed")
def test_compiled_cache_is_keyed_on_the_package() -> None:
    locator = executor.stream_process._cache._impl.locator
    assert locator.get_source_stamp() == _jit.package_digest()


@pytest.mark.skipif(not COMPILED, reason="numba is not installed")
def test_only_allocating_kernels_use_the_reference_counted_runtime() -> None:
    assert walks.forest_visit.targetoptions.get("_nrt") is False
    assert executor.forest_update.targetoptions.get("_nrt") is False
    assert "_nrt" not in executor.stream_process.targetoptions  # allocates its workspace
