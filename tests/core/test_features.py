"""Exact window features on hand-made clicks, empty windows, time zones, chunking."""

import json

import numpy as np
import pandas as pd
import pytest

from clickstream_anomaly.features import (
    ResidualState,
    WindowAccumulator,
    compute_windows,
    lookback_windows,
    read_windows,
    residuals,
    windows_from_frame,
    write_windows,
)
from clickstream_anomaly.records import WINDOW_COLUMNS, RecordError

CLICKS = """timestamp,user,page
2020-07-07T00:01:00Z,alice,/
2020-07-07T00:02:00Z,alice,/cart
2020-07-07T00:03:00Z,bob,/
2020-07-07T00:09:59.999Z,bob,/
2020-07-07T00:10:00Z,carol,/help
2020-07-07T00:31:00Z,alice,/
2020-07-07T00:35:00Z,alice,/
"""


def _write(tmp_path, text, name="clicks.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_exact_features_with_an_empty_window(tmp_path):
    w = compute_windows(_write(tmp_path, CLICKS))
    assert list(w.columns) == list(WINDOW_COLUMNS)
    assert [t.strftime("%H:%M") for t in w["window_start"]] == ["00:00", "00:10", "00:20", "00:30"]
    assert w["urls"].tolist() == [2, 1, 0, 1]
    assert w["users"].tolist() == [2, 1, 0, 1]
    assert w["clicks"].tolist() == [4, 1, 0, 2]
    # residual = clicks - users * R, R = median clicks per user of the earlier windows with users (1 if none)
    assert w["residual"].tolist() == pytest.approx([4 - 2 * 1.0, 1 - 1 * (4 / 2), 0.0, 2 - 1 * ((2 + 1) / 2)])


def test_timezone_offsets_are_converted_to_utc(tmp_path):
    text = (
        "timestamp,user,page\n"
        "2020-07-07T02:05:00+02:00,a,/\n"  # 00:05 UTC
        "2020-07-06T19:15:00-05:00,b,/\n"  # 00:15 UTC
        "2020-07-07T00:16:00,c,/x\n"
    )  # naive = UTC
    w = compute_windows(_write(tmp_path, text))
    assert [t.strftime("%Y-%m-%d %H:%M") for t in w["window_start"]] == ["2020-07-07 00:00", "2020-07-07 00:10"]
    assert w["clicks"].tolist() == [1, 2]
    assert w["urls"].tolist() == [1, 2]
    assert str(w["window_start"].dt.tz) == "UTC"


def test_start_and_end_extend_the_range_with_zero_windows(tmp_path):
    w = compute_windows(_write(tmp_path, CLICKS), start="2020-07-06 23:40", end="2020-07-07 00:50")
    assert len(w) == 8
    assert w["clicks"].tolist() == [0, 0, 4, 1, 0, 2, 0, 0]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 1000])
def test_chunked_equals_whole(tmp_path, chunk_rows):
    path = _write(tmp_path, CLICKS)
    whole = compute_windows(path)
    chunked = compute_windows(path, chunk_rows=chunk_rows)
    pd.testing.assert_frame_equal(whole, chunked)


def test_distinct_counts_across_chunk_boundaries():
    acc = WindowAccumulator(freq="10min")
    base = pd.Timestamp("2020-07-07", tz="UTC").value
    minute = 60_000_000_000
    acc.add(pd.DataFrame({"ts": [base, base + minute], "user": ["a", "b"], "page": ["/", "/"]}))
    acc.add(pd.DataFrame({"ts": [base + 2 * minute, base + 11 * minute], "user": ["a", "a"], "page": ["/", "/x"]}))
    w = acc.result()
    assert w["users"].tolist() == [2, 1]
    assert w["urls"].tolist() == [1, 1]
    assert w["clicks"].tolist() == [3, 1]


def test_out_of_order_beyond_lateness_is_an_error_not_a_silent_loss():
    acc = WindowAccumulator(freq="10min", lateness="10min")
    base = pd.Timestamp("2020-07-07", tz="UTC").value
    hour = 3_600_000_000_000
    acc.add(pd.DataFrame({"ts": [base + 2 * hour], "user": ["a"], "page": ["/"]}))
    with pytest.raises(RecordError, match="out of time order"):
        acc.add(pd.DataFrame({"ts": [base], "user": ["a"], "page": ["/"]}))


def test_out_of_order_within_lateness_is_counted():
    acc = WindowAccumulator(freq="10min", lateness="1h")
    base = pd.Timestamp("2020-07-07", tz="UTC").value
    minute = 60_000_000_000
    acc.add(pd.DataFrame({"ts": [base + 30 * minute], "user": ["a"], "page": ["/"]}))
    acc.add(pd.DataFrame({"ts": [base + minute], "user": ["b"], "page": ["/"]}))
    w = acc.result()
    assert w["clicks"].tolist() == [1, 0, 0, 1]


def test_other_frequencies(tmp_path):
    w = compute_windows(_write(tmp_path, CLICKS), freq="30min")
    assert w["clicks"].tolist() == [5, 2]
    with pytest.raises(ValueError, match="frequency"):
        compute_windows(_write(tmp_path, CLICKS), freq="soon")


def test_windows_csv_round_trip(tmp_path):
    w = compute_windows(_write(tmp_path, CLICKS))
    write_windows(w, tmp_path / "w.csv")
    back = read_windows(tmp_path / "w.csv")
    assert back["clicks"].tolist() == w["clicks"].tolist()
    assert (back["window_start"] == w["window_start"]).all()
    assert (tmp_path / "w.csv").read_text().splitlines()[1].startswith("2020-07-07T00:00:00Z,")


def test_windows_from_frame_matches_csv_path(tmp_path):
    frame = pd.read_csv(_write(tmp_path, CLICKS))
    a = windows_from_frame(frame)
    b = compute_windows(tmp_path / "clicks.csv")
    pd.testing.assert_frame_equal(a, b)


def test_read_windows_errors_name_the_line(tmp_path):
    path = _write(
        tmp_path,
        "window_start,urls,users,clicks,residual\n2020-07-07T00:00:00Z,1,1,1,0\n2020-07-07T00:10:00Z,1,x,1,0\n",
        "w.csv",
    )
    with pytest.raises(RecordError, match=r"w.csv:3: non-numeric users"):
        read_windows(path)


def test_random_clicks_match_a_naive_groupby(tmp_path):
    rng = np.random.default_rng(1)
    n = 5000
    ts = pd.Timestamp("2020-07-07", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, 86400, n)), unit="s")
    frame = pd.DataFrame(
        {"timestamp": ts, "user": rng.integers(0, 50, n).astype(str), "page": rng.integers(0, 20, n).astype(str)}
    )
    w = windows_from_frame(frame).set_index("window_start")
    g = frame.groupby(frame["timestamp"].dt.floor("10min"))
    expected = pd.DataFrame({"urls": g["page"].nunique(), "users": g["user"].nunique(), "clicks": g.size()})
    expected = expected.reindex(w.index, fill_value=0)
    assert (w["urls"] == expected["urls"]).all()
    assert (w["users"] == expected["users"]).all()
    assert (w["clicks"] == expected["clicks"]).all()
    assert np.allclose(w["residual"], residuals(expected["clicks"].to_numpy(), expected["users"].to_numpy(), 144))


def test_residual_lookback_and_streaming_twin_are_bit_identical():
    rng = np.random.default_rng(7)
    clicks = rng.integers(0, 500, 1000)
    users = np.minimum(clicks, rng.integers(0, 200, 1000))
    users[::37] = 0  # windows without users are left out of R
    batch = residuals(clicks, users, 144)
    state = ResidualState(lookback=144)
    stream = [state.residual(c, u) for c, u in zip(clicks[:500], users[:500], strict=True)]
    state = ResidualState.from_dict(json.loads(json.dumps(state.to_dict())))  # persisted and restored
    stream += [state.residual(c, u) for c, u in zip(clicks[500:], users[500:], strict=True)]
    assert np.array_equal(batch, np.asarray(stream))
    assert len(state.history) == 144
    # by hand: R = median ratio over exactly the previous 144 windows that had users
    t = 600
    prev_c, prev_u = clicks[t - 144 : t], users[t - 144 : t]
    ratio = np.median(prev_c[prev_u > 0] / prev_u[prev_u > 0])
    assert batch[t] == pytest.approx(clicks[t] - users[t] * ratio, rel=1e-12)
    assert lookback_windows("10min") == 144 and lookback_windows("1h") == 24
