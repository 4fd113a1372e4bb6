"""Versioned state files: round trip, determinism, and clear errors for foreign or damaged bytes."""

from __future__ import annotations

import numpy as np
import pytest

from clickstream_anomaly import persist


def _state(compress: bool = False) -> bytes:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], dtype=np.int16)}
    return persist.dumps("toy", 2, {"n": 3, "name": "x"}, arrays, compress=compress)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_is_exact_and_deterministic(compress):
    data = _state(compress)
    assert data == _state(compress)
    st = persist.loads(data, "toy", versions={1, 2})
    assert (st.kind, st.version, st.meta) == ("toy", 2, {"n": 3, "name": "x"})
    np.testing.assert_array_equal(st.arrays["a"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert st.arrays["b"].dtype == np.int16 and st.arrays["a"].flags.writeable
    assert persist.peek_kind(data) == ("toy", 2)


def test_wrong_kind_version_and_foreign_bytes():
    data = _state()
    with pytest.raises(persist.StateFormatError, match="is a 'toy', expected 'other'"):
        persist.loads(data, "other")
    with pytest.raises(persist.StateFormatError, match=r"version 2 is not readable here \(known: \[1\]\)"):
        persist.loads(data, "toy", versions={1})
    with pytest.raises(persist.StateFormatError, match="not a saved toy state"):
        persist.loads(b"PK\x03\x04...", "toy")
    assert persist.peek_kind(b"junk") is None


@pytest.mark.parametrize("cut", [4, 10, 40, -1])
def test_truncated_state_names_the_problem(cut):
    data = _state()
    with pytest.raises(persist.StateFormatError, match=r"truncated|corrupted|not a saved"):
        persist.loads(data[:cut], "toy")


def test_object_arrays_are_refused():
    with pytest.raises(TypeError, match="numbers only"):
        persist.dumps("toy", 1, {}, {"x": np.array([object()])})


def test_atomic_save_and_load(tmp_path):
    path = tmp_path / "deep" / "state.bin"
    persist.save(path, b"abc")
    assert persist.load(path) == b"abc" and [p.name for p in path.parent.iterdir()] == ["state.bin"]
    with pytest.raises(FileNotFoundError, match="no such state file"):
        persist.load(tmp_path / "missing")
