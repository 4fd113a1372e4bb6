"""NAB scoring (bench/nab_scoring.py) on tiny hand-computed cases, and loading NAB files with their quirks."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from nab import causal_rank, scale  # noqa: E402
from nab_scoring import (  # noqa: E402
    PROFILES,
    LabelledFile,
    load_corpus,
    load_series,
    probation_rows,
    scaled_sigmoid,
    score_at,
    sweep,
    window_rows,
)

NAB = Path(__file__).resolve().parents[2] / "data" / "nab"
STD = PROFILES["standard"]

# Hand-computed: sigma(x) = 2 / (1 + e^{5x}) - 1
SIG_M1 = 2 / (1 + math.exp(-5)) - 1  # 0.986614 (left edge, before dividing by itself)
SIG_M05 = 2 / (1 + math.exp(-2.5)) - 1  # 0.848284


def one_file(n: int = 40, probation: int = 4, windows: tuple[tuple[int, int], ...] = ((20, 23),)) -> LabelledFile:
    return LabelledFile("cat/f.csv", n, probation, windows)


def spikes(n: int, rows: list[int]) -> np.ndarray:
    s = np.zeros(n)
    s[rows] = 1.0
    return s


def test_probation_rows() -> None:
    assert probation_rows(4032) == 604  # floor(0.15 * 4032)
    assert probation_rows(1000) == 150
    assert probation_rows(10_000) == 750  # capped at 0.15 * 5000


def test_scaled_sigmoid_values() -> None:
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.986614, abs=1e-6)
    assert float(scaled_sigmoid(1.0)) == pytest.approx(-0.986614, abs=1e-6)
    assert float(scaled_sigmoid(3.5)) == -1.0


def test_perfect_detector_scores_100_and_null_0() -> None:
    f = one_file(windows=((10, 13), (25, 29)))
    perfect = spikes(40, [10, 25])  # one detection at each window's first row
    res = sweep([f], [perfect])
    assert res.score == pytest.approx(100.0)
    assert (res.detected_windows, res.false_positives) == (2, 0)
    long = one_file(n=400, probation=10, windows=((300, 309),))
    null = sweep([long], [np.zeros(400)])  # all-equal scores: detecting every row (290 FPs) is worse than null
    assert (null.score, null.detected_windows, null.false_positives) == (0.0, 0, 0)
    assert score_at([f], [perfect], 2.0).score == pytest.approx(0.0)  # threshold above all: null
    for name, prof in PROFILES.items():
        assert sweep([f], [perfect], prof).score == pytest.approx(100.0), name


def test_left_edge_gets_full_credit_later_less() -> None:
    f = one_file()  # window rows 20..23, width 4
    left = score_at([f], [spikes(40, [20])], 0.5)
    assert left.raw == pytest.approx(1.0)
    assert left.score == pytest.approx(100.0)
    mid = score_at([f], [spikes(40, [22])], 0.5)  # position -(23 - 22 + 1) / 4 = -0.5
    assert mid.raw == pytest.approx(SIG_M05 / SIG_M1)  # 0.8598
    assert mid.score == pytest.approx(100 * (SIG_M05 / SIG_M1 + 1) / 2)  # 92.99
    both = score_at([f], [spikes(40, [20, 22])], 0.5)  # only the earliest detection counts
    assert both.raw == pytest.approx(1.0)
    assert both.false_positives == 0
    # a long window: credit falls from 1 at the left edge to about 0 at the right edge
    g = one_file(n=400, probation=10, windows=((100, 199),))
    credits = [score_at([g], [spikes(400, [r])], 0.5).raw for r in range(100, 200)]
    assert credits[0] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(credits))
    assert credits[-1] == pytest.approx((2 / (1 + math.exp(-0.05)) - 1) / SIG_M1)  # 0.0253 at the last row


def test_false_positive_costs() -> None:
    g = one_file(n=800, probation=10, windows=((100, 199),))  # width 100, 1 window: null raw = -1
    before = score_at([g], [spikes(800, [50])], 0.5)
    assert before.raw == pytest.approx(-1 - 0.11)  # before the first window: full cost
    assert before.score == pytest.approx(100 * (-0.11) / 2)  # -5.5
    assert before.false_positives == 1
    just_after = score_at([g], [spikes(800, [200])], 0.5)  # 1 row past: sigma(0.01), about 0
    assert -1 - 0.01 < just_after.raw < -1
    one_width = score_at([g], [spikes(800, [299])], 0.5)  # a window-width past: sigma(1)
    assert one_width.raw == pytest.approx(-1 - 0.11 * SIG_M1)
    far = score_at([g], [spikes(800, [600])], 0.5)  # > 3 widths past: full cost
    assert far.raw == pytest.approx(-1 - 0.11)
    low_fp = score_at([g], [spikes(800, [600])], 0.5, PROFILES["reward_low_FP"])
    assert low_fp.raw == pytest.approx(-1 - 0.22)
    low_fn = score_at([g], [spikes(800, [600])], 0.5, PROFILES["reward_low_FN"])
    assert low_fn.raw == pytest.approx(-2 - 0.11)  # a miss costs 2
    assert low_fn.score == pytest.approx(100 * (-0.11) / 3)  # (raw - (-2)) / (1 - (-2))
    in_probation = score_at([g], [spikes(800, [5])], 0.5)  # probationary rows are not scored
    assert in_probation.raw == pytest.approx(-1.0)
    assert in_probation.false_positives == 0


def test_sweep_tunes_one_threshold_over_the_corpus() -> None:
    a = one_file(n=100, probation=10, windows=((50, 59),))
    b = one_file(n=100, probation=10, windows=((30, 39),))
    sa, sb = np.zeros(100), np.zeros(100)
    sa[50], sb[30] = 0.9, 0.6  # window hits
    sa[20] = 0.8  # a false positive before a's window, above b's hit
    res = sweep([a, b], [sa, sb])
    # thresholds: 0.9 -> 1 - 1 = 0; 0.8 -> 1 - 0.11 - 1; 0.6 -> 1 - 0.11 + 1 = 1.89 (best); 0 -> many FPs
    assert res.threshold == 0.6
    assert res.raw == pytest.approx(1.89)
    assert res.score == pytest.approx(100 * (1.89 + 2) / 4)
    assert (res.detected_windows, res.false_positives) == (2, 1)


def test_sweep_equals_best_direct_score_on_random_scores() -> None:
    rng = np.random.default_rng(3)
    files = [
        one_file(n=300, probation=45, windows=((100, 129), (200, 219))),
        one_file(n=200, probation=30, windows=((150, 169),)),
        one_file(n=120, probation=18, windows=()),
    ]
    scores = [np.round(rng.random(f.n_rows), 2) for f in files]  # rounded: many ties
    for f, s in zip(files, scores, strict=True):
        for lo, _ in f.windows:
            s[lo + 3] = 0.995
    for prof in PROFILES.values():
        res = sweep(files, scores, prof)
        thresholds = np.unique(np.concatenate(scores))
        direct = max([score_at(files, scores, float(t), prof).raw for t in thresholds] + [-prof.fn * 3])
        assert res.raw == pytest.approx(direct)
        assert score_at(files, scores, res.threshold, prof).raw == pytest.approx(res.raw)


def test_score_shapes_checked() -> None:
    with pytest.raises(ValueError, match="expected 40 scores"):
        sweep([one_file()], [np.zeros(39)])
    with pytest.raises(ValueError, match="NaN"):
        sweep([one_file()], [np.full(40, np.nan)])


def test_loader_quirks_on_a_written_file(tmp_path: Path) -> None:
    # duplicate timestamp, an irregular gap, negative values, no trailing newline
    text = (
        "timestamp,value\n2015-01-01 00:00:00,1.5\n2015-01-01 00:05:00,2\n2015-01-01 00:05:00,-3\n"
        "2015-01-01 00:17:00,4\n2015-01-01 00:22:01,5"
    )
    p = tmp_path / "x.csv"
    p.write_text(text)
    df = load_series(p)
    assert len(df) == 5
    assert df["value"].tolist() == [1.5, 2.0, -3.0, 4.0, 5.0]
    assert df["timestamp"].duplicated().sum() == 1
    assert window_rows(df["timestamp"], [["2015-01-01 00:05:00.000000", "2015-01-01 00:17:00.000000"]]) == ((1, 3),)


def test_scaling_and_rank_use_only_the_past() -> None:
    v = np.arange(20.0)
    w = v.copy()
    w[10:] = 1e6  # a different future
    np.testing.assert_array_equal(scale(v, 10)[:10], scale(w, 10)[:10])
    assert scale(v, 10)[:10].mean() == pytest.approx(0.0)
    r = causal_rank(np.array([3.0, 1.0, 2.0, 5.0, 2.0, 0.0]))
    # each value against the earlier ones: -, 0/1, 1/2, 3/3, (1 + 0.5)/4, 0/5
    np.testing.assert_allclose(r, [0.0, 0.0, 0.5, 1.0, 0.375, 0.0])


def test_real_nab_files_with_their_quirks() -> None:
    dup = NAB / "data" / "realAWSCloudwatch" / "ec2_disk_write_bytes_1ef3de.csv"
    df = load_series(dup)
    lines = dup.read_text().splitlines()
    assert len(df) == len(lines) - 1
    assert df["timestamp"].duplicated().sum() == 11
    traffic = sorted((NAB / "data" / "realTraffic").glob("*.csv"))
    no_newline = [p for p in traffic if not p.read_bytes().endswith(b"\n")]
    assert no_newline
    p = no_newline[0]
    df = load_series(p)
    last = p.read_text().splitlines()[-1].split(",")
    assert df["value"].iloc[-1] == float(last[1])
    assert df["timestamp"].diff().dropna().nunique() > 1  # irregular gaps


def test_real_corpus_labels() -> None:
    corpus = load_corpus(NAB)
    assert len(corpus) == 36
    assert sum(len(f.windows) for f, _ in corpus) == 64
    for f, df in corpus:
        assert f.n_rows == len(df)
        for lo, hi in f.windows:
            assert f.probation <= lo <= hi < f.n_rows
        if f.windows:  # NAB sizes windows to about 10% of a file's rows
            assert 0.05 < f.in_window().mean() < 0.12, f.name
    perfect = [np.isin(np.arange(f.n_rows), [lo for lo, _ in f.windows]).astype(float) for f, _ in corpus]
    assert sweep([f for f, _ in corpus], perfect).score == pytest.approx(100.0)
