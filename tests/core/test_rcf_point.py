"""StreamingRCF one call per point: ``score``, ``attribution``, ``update`` and one-row ``process`` give
bit for bit the scores, DiVectors and state of the bulk ``process`` path, and of the implementation
before the single-point path (commit 02f9803), whose results are pinned below as SHA-256 digests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from clickstream_anomaly.rcf import COMPILED, StreamingRCF, executor
from clickstream_anomaly.rcf.arrays import to_arrays

# (seed, dimensions, shingle_size, num_trees, sample_size, bounding_box_cache_fraction)
CASES = [
    (0, 1, 1, 10, 32, 0.3),
    (1, 4, 1, 10, 32, 0.3),
    (2, 2, 3, 10, 32, 0.0),
    (3, 3, 4, 12, 48, 1.0),
    (4, 4, 2, 30, 64, 0.3),
]
N = 400


def _stream(n: int, d: int, seed: int) -> np.ndarray:
    """Noisy sinusoids (not float32 values) with a run of repeats and a few far points."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    X = np.sin(t / 17.0 + np.arange(d)) * 3 + rng.normal(0, 0.3, (n, d))
    X[150:160] = X[140]
    X[rng.choice(np.arange(100, n), 6, replace=False)] += 12.0
    return X


def _model(case: tuple[int, int, int, int, int, float]) -> StreamingRCF:
    seed, d, s, trees, sample, fraction = case
    return StreamingRCF(
        dimensions=d,
        shingle_size=s,
        num_trees=trees,
        sample_size=sample,
        random_state=seed,
        bounding_box_cache_fraction=fraction,
    )


def _per_point(case: tuple[int, int, int, int, int, float]) -> tuple[np.ndarray, ...]:
    """Score, attribution and update, one call each per point (every third point as a list); every
    seventh point also scores a far point without inserting it. Returns the scores, the DiVectors, the
    far points' scores and attributions, and the model."""
    seed, d, s = case[:3]
    X = _stream(N, d, seed)
    model = _model(case)
    D = d * s
    scores, high, low = np.zeros(N), np.zeros((N, D)), np.zeros((N, D))
    far = []
    for i, x in enumerate(X):
        point = x.tolist() if i % 3 == 0 else x
        scores[i] = model.score(point)
        high[i], low[i] = model.attribution(point)
        if i % 7 == 0:
            q = x + 25.0
            far.append([model.score(q), *np.concatenate(model.attribution(q))])
        model.update(point)
    return scores, high, low, np.array(far), model


def _rows_one_by_one(case: tuple[int, int, int, int, int, float]) -> tuple[np.ndarray, ...]:
    """``process`` of one row per call (the KDA stream's ``process_row``). Returns the scores, the
    DiVectors and the model."""
    seed, d = case[:2]
    model = _model(case)
    outputs = [model.process(x[None, :]) for x in _stream(N, d, seed)]
    scores, high, low = (np.concatenate(parts) for parts in zip(*outputs, strict=True))
    return scores, high, low, model


def _digest(*arrays: np.ndarray, model: StreamingRCF) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    assert model._forest is not None
    state = to_arrays(model._forest)
    state["store.free"] = state["store.free"][: int(state["store.n_free"][0])]  # the stack's valid part
    for name, a in sorted(state.items()):
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    h.update(np.ascontiguousarray(model._buf).tobytes() + str(model.inputs_seen).encode())
    return h.hexdigest()


# _digest of _per_point and of _rows_one_by_one for each of CASES, computed at commit 02f9803 (before the
# single-point kernel), where both went through the batch kernel one row at a time; printed by running
# this file (``python tests/core/test_rcf_point.py``), the same with and without numba
PINNED = [
    (
        "ef17010371fe519d97ba22ef01b32bdd8080ffce3e6a4e617b408bf99b8b628f",
        "5e1452aac194c3798cf1ad0e60f8d197dfa883be2047fec0a700afedbae77122",
    ),
    (
        "e1f0cfa996c2832ec98914321a8f671414093169e538418310089b57b9f3c43f",
        "1d54a4ec00a13fa6769a95023035d58722d4b761af718bcf16977b27ed9619d9",
    ),
    (
        "acabd06420954d6ab21dddaf6f1f3810c995204c5de10568a87d3954297bd645",
        "35989580139394f6e80722fd8cfed6111ca1b8f75f79a090d52c5614ebc8f622",
    ),
    (
        "c1eca7a15f418d91fd1e3b4b597743981c34ece605b806722df93a29a24a5c26",
        "97d51246e19f8c04229168053f164b98cbea9bcf02fae67ebff10f42b1513238",
    ),
    (
        "468cd5dad4ba1ed336b52a627f9d3d38536181ee2e9c62b12b0f40bd8d44a471",
        "ca30d378e356cd5d12358c04d08ec497dcfd912791a337542132137ad923a386",
    ),
]


def _assert_same_state(a: StreamingRCF, b: StreamingRCF) -> None:
    """Every array of the two forests is equal, except that the point stores may differ in capacity
    (``process`` reserves room for up to 256 arrivals at a time, a single update for one): their used
    slots, references and points are then equal, and so is the shingle."""
    assert a._forest is not None and b._forest is not None
    sa, sb = to_arrays(a._forest), to_arrays(b._forest)
    for name in sa:
        if not name.startswith("store."):
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    live = min(sa["store.refs"].size, sb["store.refs"].size)
    for name in ("store.refs", "store.points"):
        np.testing.assert_array_equal(sa[name][:live], sb[name][:live], err_msg=name)
        assert not sa[name][live:].any() and not sb[name][live:].any(), name  # no point held beyond
    np.testing.assert_array_equal(a._buf, b._buf)
    assert a.inputs_seen == b.inputs_seen and a.entries_seen == b.entries_seen


@pytest.mark.parametrize("case", range(len(CASES)))
def test_per_point_calls_give_the_pinned_scores_attributions_and_state(case: int) -> None:
    *outputs, model = _per_point(CASES[case])
    assert _digest(*outputs, model=model) == PINNED[case][0]
    *rows, by_row = _rows_one_by_one(CASES[case])
    assert _digest(*rows, model=by_row) == PINNED[case][1]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_per_point_calls_equal_the_bulk_path(case: int) -> None:
    seed, d = CASES[case][:2]
    X = _stream(N, d, seed)
    scores, high, low, _, per_point = _per_point(CASES[case])
    bulk = _model(CASES[case])
    b_scores, b_high, b_low = bulk.process(X)
    assert (b_scores > 0).sum() > N // 2  # past the warm-up: the comparison is not of zeros
    np.testing.assert_array_equal(scores, b_scores)
    np.testing.assert_array_equal(high, b_high)
    np.testing.assert_array_equal(low, b_low)
    _assert_same_state(per_point, bulk)
    *_, by_row = _rows_one_by_one(CASES[case])
    _assert_same_state(by_row, bulk)
    # and the streams go on alike, whichever path continues them
    more = _stream(N, d, seed + 100)[:120]
    expected = bulk.process(more)
    for model in (per_point, by_row):
        for got, want in zip(model.process(more), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_point_and_row_calls_equal_bulk_on_float32_edge_values() -> None:
    big = float(np.finfo(np.float32).max)
    edge = [big, -big, 1e-45, -1e-45, 1e-39, -0.0, 0.1, 1 / 3, 16777217.0]
    rng = np.random.default_rng(5)
    X = rng.choice(edge, size=(300, 2))
    X[::3] = rng.normal(size=(100, 2))
    kwargs = {"dimensions": 2, "shingle_size": 2, "num_trees": 8, "sample_size": 16, "random_state": 3}
    expected = StreamingRCF(**kwargs).process(X)
    point, row = StreamingRCF(**kwargs), StreamingRCF(**kwargs)
    got = np.zeros(len(X)), np.zeros((len(X), 4)), np.zeros((len(X), 4))
    for i, x in enumerate(X):
        got[1][i], got[2][i] = point.attribution(x)
        got[0][i] = point.score(x)
        point.update(x)
        one = row.process(x[None, :])
        assert one[0].shape == (1,) and one[1].shape == one[2].shape == (1, 4)
        np.testing.assert_array_equal(
            np.concatenate([one[0], one[1][0], one[2][0]]), [got[0][i], *got[1][i], *got[2][i]]
        )
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_same_state(point, row)


def test_process_scores_of_one_row_equals_bulk() -> None:
    X = _stream(300, 3, 9)
    bulk = StreamingRCF(dimensions=3, num_trees=10, sample_size=32, random_state=9)
    rows = StreamingRCF(dimensions=3, num_trees=10, sample_size=32, random_state=9)
    np.testing.assert_array_equal(np.concatenate([rows.process_scores(x[None, :]) for x in X]), bulk.process_scores(X))
    _assert_same_state(rows, bulk)


@pytest.mark.parametrize(
    "bad", [[np.nan, 1.0], [1.0, np.inf], [1e39, 0.0], [0.0, -3.5e38], [3.4028235677973366e38, 0.0]]
)
def test_refused_point_changes_nothing_even_when_the_store_must_grow(bad: list[float]) -> None:
    m = StreamingRCF(dimensions=2, num_trees=10, sample_size=32, random_state=0)
    X = _stream(400, 2, 0)
    for x in X:  # one point at a time until the next update needs a larger store
        m.update(x)
        assert m._forest is not None
        if m._forest.store.n_free[0] == 0:
            break
    assert m._forest is not None and m._forest.store.n_free[0] == 0
    before = m.to_bytes()
    for call in (m.update, m.score, m.attribution):
        with pytest.raises(ValueError, match=r"^point has a (non-finite value|value beyond the float32 range)"):
            call(bad)
    for process in (m.process, m.process_scores):  # the messages of the bulk path
        with pytest.raises(ValueError, match=r"^X has a (non-finite value .* at row 0|value beyond the float32)"):
            process(np.array([bad]))
    assert m.to_bytes() == before
    seen = m.inputs_seen
    m.update(X[-1])  # and the stream goes on, its store grown
    assert m.inputs_seen == seen + 1 and m._forest.store.n_free[0] > 0


@pytest.mark.skipif(not COMPILED, reason="numba is not installed")
def test_single_point_kernel_does_not_use_the_reference_counted_runtime() -> None:
    assert executor.point_step.targetoptions.get("_nrt") is False  # it allocates nothing


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from clickstream_anomaly.rcf import COMPILED
from test_rcf_point import CASES, _digest, _per_point, _rows_one_by_one
print(COMPILED)
*outputs, model = _per_point(CASES[0])
*rows, by_row = _rows_one_by_one(CASES[0])
print(_digest(*outputs, model=model), _digest(*rows, model=by_row))
"""


def test_pure_python_single_point_path_gives_the_pinned_results() -> None:
    env = dict(os.environ, CLICKSTREAM_ANOMALY_NO_NUMBA="1")
    script = SCRIPT.format(tests=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", *PINNED[0]]


if __name__ == "__main__":  # prints the digests to pin
    for case in CASES:
        *outputs, model = _per_point(case)
        *rows, by_row = _rows_one_by_one(case)
        print(case, _digest(*outputs, model=model), _digest(*rows, model=by_row))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_every_input_type_gives_the_bulk_results() -> None:
    X = np.round(_stream(240, 2, 4) * 4)  # integers, so that int arrays hold the same values
    kwargs = {"dimensions": 2, "shingle_size": 2, "num_trees": 8, "sample_size": 16, "random_state": 4}
    expected = StreamingRCF(**kwargs).process(X)
    points, rows = StreamingRCF(**kwargs), StreamingRCF(**kwargs)
    kinds = [
        lambda x: x,
        lambda x: x.tolist(),
        lambda x: tuple(x),
        lambda x: x.astype(np.float32),
        lambda x: x.astype(np.int64),
        lambda x: np.c_[x, x].ravel()[::2],  # a strided view
    ]
    row_kinds = [
        lambda x: x[None, :],
        lambda x: [x.tolist()],
        lambda x: np.matrix(x),
        lambda x: x[None, :].astype(np.float32),
        lambda x: x[None, :].astype(np.int32),
        lambda x: np.c_[x, x].T[:1],  # not C-contiguous
    ]
    got = np.zeros(len(X)), np.zeros((len(X), 4)), np.zeros((len(X), 4))
    by_row = []
    for i, x in enumerate(X):
        point = kinds[i % len(kinds)](x)
        got[0][i] = points.score(point)
        got[1][i], got[2][i] = points.attribution(point)
        points.update(point)
        by_row.append(rows.process(row_kinds[i % len(row_kinds)](x)))
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip((np.concatenate(p) for p in zip(*by_row, strict=True)), expected, strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_same_state(points, rows)
