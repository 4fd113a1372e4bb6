"""Saved forests: the current state (version 3, a persist container) and the version 2 ``.npz`` states
written by commit 0f1df5b, which load and continue their streams exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clickstream_anomaly import persist
from clickstream_anomaly.rcf import RandomCutForest, StreamingRCF, state

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(DATA / "rcf_v2_expected.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_version_2_streaming_state_continues_exactly(expected) -> None:
    m = StreamingRCF.from_bytes((DATA / "rcf_streaming_v2.npz").read_bytes())
    assert m.shingle_size == 2 and m.inputs_seen == 400 and m.entries_seen == 399
    scores, high, low = m.process(expected["X"][400:])
    np.testing.assert_array_equal(scores, expected["v2_stream_scores"])
    np.testing.assert_array_equal(high, expected["v2_stream_high"])
    np.testing.assert_array_equal(low, expected["v2_stream_low"])


def test_version_2_batch_state_scores_exactly(expected) -> None:
    b = RandomCutForest.from_bytes((DATA / "rcf_batch_v2.npz").read_bytes())
    X = expected["X"]
    np.testing.assert_array_equal(b.score_samples(X[400:]), expected["v2_batch_scores"])
    high, low = b.attribution(X[400:450])
    np.testing.assert_array_equal(high, expected["v2_batch_high"])
    np.testing.assert_array_equal(low, expected["v2_batch_low"])
    assert not hasattr(b, "offset_")  # older states have no threshold


def test_resaved_state_is_version_3_and_continues_identically(expected) -> None:
    old = StreamingRCF.from_bytes((DATA / "rcf_streaming_v2.npz").read_bytes())
    data = old.to_bytes()
    assert persist.peek_kind(data) == ("rcf.StreamingRCF", state.VERSION)
    again = StreamingRCF.from_bytes(data)
    assert again.to_bytes() == data
    np.testing.assert_array_equal(again.process(expected["X"][400:])[0], expected["v2_stream_scores"])
    decoded = persist.loads(data, "rcf.StreamingRCF")
    assert decoded.meta["params"]["shingle_size"] == 2 and "nodes.left" in decoded.arrays
    assert "shingle_buffer" in decoded.arrays


def test_states_of_another_kind_or_garbage_are_rejected() -> None:
    stream = StreamingRCF(dimensions=2, num_trees=3, sample_size=8, random_state=0)
    stream.process(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(persist.StateFormatError, match=r"expected 'rcf\.RandomCutForest'"):
        RandomCutForest.from_bytes(stream.to_bytes())
    with pytest.raises(ValueError, match="StreamingRCF"):
        StreamingRCF.from_bytes(b"garbage")
    with pytest.raises(ValueError, match="not bytes"):
        StreamingRCF.from_bytes("text")  # type: ignore[arg-type]


def test_non_json_parameters_are_saved_as_their_json_form() -> None:
    rule_model = StreamingRCF(
        dimensions=np.int64(2), num_trees=3, sample_size=8, random_state=np.random.SeedSequence(4), threshold=None
    )
    rule_model.process(np.zeros((5, 2)))
    params = persist.loads(rule_model.to_bytes(), "rcf.StreamingRCF").meta["params"]
    assert params["dimensions"] == 2 and params["random_state"] is None and params["threshold"] is None
