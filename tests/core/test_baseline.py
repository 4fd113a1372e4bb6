"""The time-aware baseline: its maths on series whose truth is known, batch = streaming, state, edges."""

from __future__ import annotations

import copy
import doctest

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from clickstream_anomaly.baseline import TimeAwareBaseline, detections_from_baseline
from clickstream_anomaly.baseline import detector as baseline_detector
from clickstream_anomaly.baseline.calendar import check_timezone, local_slots, slot_label
from clickstream_anomaly.detectors import BaselineDetector
from clickstream_anomaly.windowspec import WindowSpec

DAY = 144


def rhythm(hours: np.ndarray, weekday: np.ndarray, weekend: float = 1.0) -> np.ndarray:
    """A smooth daily profile (night 15 %, afternoon peak) times a weekend factor."""
    daily = 0.15 + 0.85 * np.clip(np.sin(np.pi * (hours - 6) / 18), 0, None) ** 2
    return daily * np.where(weekday >= 5, weekend, 1.0)


def series(
    days: int = 8, peak: float = 300.0, seed: int = 0, start: str = "2024-01-01", weekend: float = 1.0, tz: str = "UTC"
) -> pd.DataFrame:
    """Poisson clicks per 10-minute window (users and urls derived), rhythm in local time of ``tz``."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(pd.Timestamp(start, tz=tz).tz_convert("UTC"), periods=days * DAY, freq="10min")
    local = starts.tz_convert(tz)
    mean = peak * rhythm(local.hour.to_numpy() + local.minute.to_numpy() / 60, local.day_of_week.to_numpy(), weekend)
    clicks = rng.poisson(mean)
    users = rng.binomial(clicks, 0.4)
    urls = np.minimum(rng.poisson(np.sqrt(mean) * 2), 60)
    frame = pd.DataFrame({"window_start": starts, "urls": urls, "users": users, "clicks": clicks})
    frame["residual"] = frame["clicks"] - frame["users"] * 2.5
    return frame


def test_deviations_of_normal_traffic_are_standard_and_nothing_is_flagged():
    frame = series(days=8)
    scores = TimeAwareBaseline().fit(None).process(frame)
    z = scores.z[scores.warm]
    assert abs(np.nanmean(z)) < 0.15 and 0.7 < np.nanstd(z) < 1.3
    assert (scores.score[scores.warm] < 1).all()


def test_counts_are_judged_on_their_own_scale():
    frame = series(days=4, peak=300)
    model = TimeAwareBaseline(columns=["clicks"], count_columns=["clicks"]).fit(frame.iloc[: 3 * DAY])
    day4 = frame.iloc[3 * DAY :].reset_index(drop=True)
    peak = int(day4["clicks"].idxmax())
    night = int(np.argmin(rhythm(np.arange(DAY) / 6, np.zeros(DAY))))
    probe = day4.iloc[[night, peak]].copy()
    expected_peak = model.score_samples(probe.iloc[[1]])  # the state is not changed by score_samples
    assert expected_peak[0] < 1
    zero = probe.assign(clicks=[0, 0])
    z = model.score_samples(zero.iloc[[1]])
    assert z[0] > 2  # zero clicks where ~300 are expected: more than 10 spreads off
    small = probe.iloc[[0]].assign(clicks=[0])  # zero where ~40 are expected at night: also flagged, less so
    assert model.score_samples(small)[0] < z[0]
    close = probe.iloc[[1]].assign(clicks=[int(probe["clicks"].iloc[1] * 40 / 45)])  # 40 where 45 expected
    assert model.score_samples(close)[0] < 0.5


def test_batch_and_streaming_are_bit_identical_through_saved_state():
    frame = series(days=3, seed=3)
    batch = TimeAwareBaseline(window="10min").fit(None).process(frame)
    model = TimeAwareBaseline(window="10min").fit(None)
    rows = []
    for i in range(len(frame)):  # one window per "invocation", state saved and loaded in between
        model = TimeAwareBaseline.from_bytes(model.to_bytes())
        rows.append(model.process(frame.iloc[[i]]))
    for name in ("z", "expected", "low", "high", "drift", "column_score", "score", "warm"):
        np.testing.assert_array_equal(np.concatenate([getattr(r, name) for r in rows]), getattr(batch, name))


def test_state_is_small_and_versioned():
    model = TimeAwareBaseline().fit(series(days=2))
    data = model.to_bytes()
    assert len(data) < 50_000 and data.startswith(b"CSASTATE")
    again = TimeAwareBaseline.from_bytes(data)
    assert again.get_params() == {**model.get_params(), "window": "10min"}


def test_first_day_gives_no_verdict_not_even_for_an_outage():
    frame = series(days=2)
    frame.loc[60:70, ["urls", "users", "clicks", "residual"]] = 0
    scores = TimeAwareBaseline().fit(None).process(frame)
    assert not scores.warm[:DAY].any() and (scores.score[:DAY] == 0).all()
    dets = detections_from_baseline(frame, scores)
    assert all(d.warmup and not d.is_anomaly for d in dets[:DAY]) and not any(d.warmup for d in dets[DAY:])


def test_an_outage_is_caught_and_does_not_become_tomorrows_normal():
    frame = series(days=6, seed=1)
    at = 4 * DAY + 84  # day 5, 14:00
    frame.loc[at : at + 2, ["urls", "users", "clicks"]] = 0
    frame.loc[at : at + 2, "residual"] = 0.0
    scores = TimeAwareBaseline().fit(None).process(frame)
    assert (scores.score[at : at + 3] > 1).all()
    clean = TimeAwareBaseline().fit(None).process(series(days=6, seed=1))
    nxt = slice(at + DAY, at + DAY + 3)  # the same hour the next day: still normal, expectation barely moved
    assert (scores.score[nxt] < 1).all()
    ratio = scores.expected[nxt, 2] / clean.expected[nxt, 2]
    assert (np.abs(ratio - 1) < 0.1).all()


def test_a_level_change_is_followed():
    # at midnight of a weekday seen before (the second Monday); on a weekday never seen, whose own level
    # is unknown, the faster level of a new weekday absorbs a jump at night before day traffic shows it
    frame = series(days=10, seed=2)
    grow = frame.index >= 7 * DAY
    frame.loc[grow, ["users", "clicks"]] = (frame.loc[grow, ["users", "clicks"]] * 1.6).round()
    scores = TimeAwareBaseline().fit(None).process(frame)
    assert scores.score[7 * DAY : 7 * DAY + 60].max() > 1  # the jump is reported
    last_day = slice(9 * DAY, 10 * DAY)
    ratio = frame["clicks"].iloc[last_day].sum() / scores.expected[last_day, 2].sum()
    assert 0.9 < ratio < 1.1 and (scores.score[last_day] < 1).mean() > 0.97


def test_a_slow_ramp_is_reported_as_a_sustained_rise():
    frame = series(days=10, seed=4)
    start = 8 * DAY + 60  # day 9 (a weekday seen before), 10:00: traffic doubles over 3 hours and stays
    factor = np.ones(len(frame))
    factor[start:] = np.minimum(1 + (np.arange(len(frame) - start) / 18), 2.0)
    frame[["users", "clicks"]] = (frame[["users", "clicks"]].to_numpy() * factor[:, None]).round()
    scores = TimeAwareBaseline().fit(None).process(frame)
    flagged = np.flatnonzero(scores.score[start:] >= 1)
    visible = int(np.argmax(factor[start:] >= 1.25))  # 25 % above normal
    assert flagged.size and flagged[0] - visible <= 3  # within 30 minutes of becoming visible
    assert scores.z[start + flagged[0], 2] > 0


def test_the_second_weekend_is_normal():
    frame = series(days=15, weekend=0.6, start="2024-01-01")  # a Monday
    scores = TimeAwareBaseline().fit(None).process(frame)
    second_weekend = slice(12 * DAY, 14 * DAY)
    assert (scores.score[second_weekend] < 1).all()


def test_local_time_with_dst():
    assert check_timezone("Europe/Paris") == "Europe/Paris"
    with pytest.raises(ValueError, match="unknown time zone"):
        check_timezone("Mars/Olympus")
    starts = pd.to_datetime(["2024-03-30 13:00", "2024-03-31 12:00"], utc=True).as_unit("ns").asi8
    slots, weekdays = local_slots(starts, WindowSpec.parse("10min"), "Europe/Paris")
    assert slots.tolist() == [84, 84] and weekdays.tolist() == [5, 6]  # 14:00 local on both sides of DST
    assert slot_label(int(starts[1]), "Europe/Paris") == "Sun 14:00"
    frame = series(days=6, start="2024-03-27", tz="Europe/Paris")
    scores = TimeAwareBaseline(timezone="Europe/Paris").fit(None).process(frame)
    assert (scores.score[scores.warm] < 1).all()  # the rhythm is local: the clock change is no anomaly


def test_excluded_periods_are_neither_flagged_nor_learned():
    frame = series(days=5, seed=6)
    holiday = frame.index >= 3 * DAY
    frame.loc[holiday & (frame.index < 4 * DAY), ["users", "clicks"]] //= 5
    day4 = (frame["window_start"].iloc[3 * DAY], frame["window_start"].iloc[4 * DAY])
    scores = TimeAwareBaseline().fit(None).process(frame, exclude=[day4])
    assert not scores.warm[3 * DAY : 4 * DAY].any()
    assert (scores.score[4 * DAY :] < 1).all()  # day 5 is judged against normal days, not the holiday


@pytest.mark.parametrize(("value", "message"), [(-1, "negative clicks"), (np.nan, "missing or infinite clicks")])
def test_bad_counts_name_the_row(value, message):
    frame = series(days=1).astype({"clicks": "float64"})
    frame.loc[5, "clicks"] = value
    with pytest.raises(ValueError, match=f"row 5 .*{message}"):
        TimeAwareBaseline().fit(None).process(frame)


def test_windows_out_of_order_and_bad_parameters():
    frame = series(days=1)
    with pytest.raises(ValueError, match="not in time order at row 1"):
        TimeAwareBaseline().fit(None).process(frame.iloc[[1, 0]])
    with pytest.raises(ValueError, match="'point_threshold' parameter of TimeAwareBaseline"):
        TimeAwareBaseline(point_threshold=0).fit(None)
    with pytest.raises(ValueError, match="level_window must be a duration"):
        TimeAwareBaseline(level_window="often").fit(None)


def test_estimators_clone_and_the_detector_follows_the_lifecycle():
    model = TimeAwareBaseline(timezone="Europe/Paris", point_threshold=4.0)
    assert clone(model).get_params() == model.get_params()
    det = BaselineDetector(timezone="Asia/Tokyo")
    assert clone(det).get_params() == det.get_params()
    frame = series(days=3)
    fitted = det.fit(frame.iloc[: 2 * DAY]).detect(frame.iloc[2 * DAY :])
    assert len(fitted) == DAY and not any(d.warmup for d in fitted)  # history given: verdicts from the start
    fresh = BaselineDetector().detect(frame.iloc[2 * DAY :])
    assert all(d.warmup for d in fresh)  # no history: the first day is warm-up


def test_docstring_examples_run():
    from clickstream_anomaly.baseline import generic

    assert doctest.testmod(baseline_detector, raise_on_error=False).failed == 0
    assert doctest.testmod(generic, raise_on_error=False).failed == 0


# ------------------------------------------------------------------------------------------- generic columns
def metric(days: int = 6, seed: int = 0, freq: str = "5min", sd: float = 1.0) -> pd.DataFrame:
    """A generic metric (no daily rhythm): level 50, Gaussian noise, rounded to 0.1."""
    rng = np.random.default_rng(seed)
    n = days * int(pd.Timedelta("1D") / pd.Timedelta(freq))
    starts = pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")
    return pd.DataFrame({"window_start": starts, "value": np.round(50 + rng.normal(0, sd, n), 1)})


def generic_model(**kw) -> TimeAwareBaseline:
    return TimeAwareBaseline(columns=["value"], count_columns=[], window="5min", **kw).fit(None)


def test_columns_other_than_the_window_features_are_generic():
    assert TimeAwareBaseline().fit(None).params_.generic == (0, 0, 0, 0)
    assert generic_model().params_.generic == (1,)
    mixed = TimeAwareBaseline(columns=["clicks", "value"], count_columns=["clicks"], window="5min").fit(None)
    assert mixed.params_.generic == (0, 1)
    chosen = TimeAwareBaseline(columns=["clicks", "value"], count_columns=["clicks"], generic_columns=["clicks"])
    assert chosen.set_params(window="5min").fit(None).params_.generic == (1, 0)
    with pytest.raises(ValueError, match="generic_columns"):
        TimeAwareBaseline(columns=["value"], count_columns=[], generic_columns=["other"], window="5min").fit(None)


def test_a_series_without_rhythm_is_predicted_flat_and_a_rhythmic_one_seasonally():
    flat = generic_model()
    flat.process(metric(days=4))
    assert flat.state_._flat_preferred().all()  # a noisy daily profile predicts worse than the recent median
    frame = series(days=4)[["window_start", "clicks"]].rename(columns={"clicks": "value"})
    seasonal = TimeAwareBaseline(columns=["value"], count_columns=[], window="10min").fit(None)
    seasonal.process(frame.astype({"value": "float64"}))
    assert not seasonal.state_._flat_preferred().any()


def test_a_generic_spike_that_keeps_coming_back_is_old_news_and_a_new_one_is_news():
    frame = metric(days=6)
    spikes = np.arange(2 * 288, len(frame) - 288, 24)  # every 2 hours from day 3 on, always +30
    frame.loc[spikes, "value"] += 30.0
    big = len(frame) - 100
    frame.loc[big, "value"] += 80.0  # once, much larger than the usual spikes
    scores = generic_model().process(frame)
    assert scores.score[spikes[0]] >= 1  # the first spike is news
    assert (scores.score[spikes[-20:]] < 1).all()  # ... the twentieth of its kind is not
    assert scores.score[big] >= 1 and scores.novelty[big, 0] > 0.5
    assert (scores.score[scores.warm] >= 1).sum() < 20
    assert np.isnan(TimeAwareBaseline().fit(None).process(series(days=2)).novelty).all()  # window features: no novelty


def test_a_rare_recurring_anomaly_stays_news_with_more_neighbours():
    frame = metric(days=6)
    spikes = np.arange(2 * 288, len(frame), 288)  # once a day from day 3 on, to the same value
    frame.loc[spikes, "value"] = 80.0
    one = generic_model().process(frame)
    six = generic_model(novelty_neighbours=6).process(frame)
    assert one.score[spikes[0]] >= 1 and (one.score[spikes[1:]] < 1).all()  # the second one is old news
    assert (six.score[spikes] >= 1).all()  # fewer than 6 alike in the week: each one is news
    assert (six.score[six.warm] >= 1).sum() <= len(spikes) + 3
    with pytest.raises(ValueError, match="novelty_neighbours"):
        generic_model(novelty_neighbours=0)


def test_a_generic_anomaly_stays_flagged_while_it_lasts():
    frame = metric(days=5)
    at = 4 * 288
    frame.loc[at : at + 5, "value"] -= 25.0  # a drop of 30 minutes
    scores = generic_model().process(frame)
    assert (scores.score[at : at + 6] >= 1).all()  # its later windows are compared with what came before it
    assert (scores.score[at + 12 : at + 60] < 1).all()


def test_a_metric_that_moves_in_steps_is_not_flagged_for_one_step():
    rng = np.random.default_rng(1)
    frame = metric(days=4)
    frame["value"] = 20.0 + 0.5 * (rng.random(len(frame)) < 0.02)  # constant, with rare one-step blips
    scores = generic_model().process(frame)
    assert (scores.score[scores.warm] < 1).all()
    assert np.abs(scores.z[scores.warm]).max() < 5  # a one-step blip is a few spreads, not hundreds


def test_generic_batch_and_streaming_are_bit_identical_and_the_state_stays_small():
    frame = metric(days=2, seed=5)
    frame.loc[400:403, "value"] += 15.0
    batch = generic_model().process(frame)
    model = generic_model()
    rows = []
    for i in range(len(frame)):
        model = TimeAwareBaseline.from_bytes(model.to_bytes())
        rows.append(model.process(frame.iloc[[i]]))
    for name in ("z", "expected", "novelty", "column_score", "score", "warm"):
        np.testing.assert_array_equal(np.concatenate([getattr(r, name) for r in rows]), getattr(batch, name))
    assert len(model.to_bytes()) < 50_000


def test_a_state_saved_before_generic_columns_still_loads():
    from clickstream_anomaly import persist
    from clickstream_anomaly.baseline import SeasonalState
    from clickstream_anomaly.baseline import model as baseline_model

    model = TimeAwareBaseline().fit(series(days=2))
    state = persist.loads(model.state_.to_bytes(), baseline_model.KIND)
    old = {k: v for k, v in state.meta["params"].items() if k not in ("generic", "novelty_memory", "point_threshold")}
    meta = {**{k: v for k, v in state.meta.items() if k not in ("compared", "dev_n", "dev_pos")}, "params": old}
    arrays = {k: v for k, v in state.arrays.items() if k in baseline_model.SeasonalState._ARRAYS[:14]}
    loaded = SeasonalState.from_bytes(persist.dumps(baseline_model.KIND, 1, meta, arrays))
    frame = series(days=3).iloc[2 * DAY :]
    again = TimeAwareBaseline().fit(series(days=2))
    again.state_ = loaded
    scores = again.process(frame)
    assert scores.warm.all() and (scores.score < 1).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_incident_does_not_widen_the_band_that_judges_the_next_one(seed):
    frame = series(days=9, seed=seed)
    flood = frame.copy()
    at = 7 * DAY + 84  # the second Monday, 14:00: an hour of 2.2x traffic
    flood.loc[at : at + 5, ["users", "clicks"]] = (flood.loc[at : at + 5, ["users", "clicks"]] * 2.2).round()
    scores = TimeAwareBaseline().fit(None).process(flood)
    clean = TimeAwareBaseline().fit(None).process(frame)
    assert (scores.score[at : at + 6] > 1).all()
    nxt = slice(at + DAY, at + DAY + 6)  # the same hour the next day
    width = scores.high[nxt, 2] - scores.low[nxt, 2]
    assert (width / (clean.high[nxt, 2] - clean.low[nxt, 2]) < 1.2).all()  # before: about 2x


def test_two_windows_in_a_row_beyond_three_spreads_are_flagged_where_one_is_not():
    frame = series(days=9, seed=5)
    clean = TimeAwareBaseline().fit(None).process(frame)
    at = 8 * DAY + 84  # Tuesday 14:00
    root = np.sqrt(clean.expected[at : at + 2, 2] + 3 / 8)
    spread = (root - np.sqrt(clean.low[at : at + 2, 2] + 3 / 8)) / baseline_detector.BAND_Z
    dip = np.round((root - 3.6 * spread) ** 2 - 3 / 8)  # 3.6 spreads low: not 5, the point threshold
    one, two = frame.copy(), frame.copy()
    one.loc[at, "clicks"] = dip[0]
    two.loc[at : at + 1, "clicks"] = dip
    s1 = TimeAwareBaseline().fit(None).process(one)
    s2 = TimeAwareBaseline().fit(None).process(two)
    assert -4.2 < s1.z[at, 2] < -3.1 and s1.score[at : at + 2].max() < 1
    assert s2.score[at + 1] >= 1 and s2.column_score[at + 1, 2] == s2.score[at + 1]
    assert s2.score[at] < 1  # one window alone is not enough
    off = TimeAwareBaseline(pair_threshold=10.0).fit(None).process(two)
    assert off.score[at : at + 2].max() < 1


def _run_of_dips(frame: pd.DataFrame, at: int, depth: float, **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``at``, ``at + 1``, ``at + 2`` lowered, each to ``depth`` spreads below what the baseline
    expects there given the run so far; the z of clicks, the scores and the column scores of the three."""
    model = TimeAwareBaseline(**params).fit(frame.iloc[:at])
    z, score, column = [], [], []
    for k in range(3):
        row = frame.iloc[at + k : at + k + 1].copy()
        probe = copy.deepcopy(model).process(row)  # the prediction does not depend on the row's value
        root = np.sqrt(probe.expected[0, 2] + 3 / 8)
        spread = (root - np.sqrt(probe.low[0, 2] + 3 / 8)) / baseline_detector.BAND_Z
        row["clicks"] = np.round((root - depth * spread) ** 2 - 3 / 8)
        out = model.process(row)
        z.append(out.z[0, 2])
        score.append(out.score[0])
        column.append(out.column_score[0, 2])
    return np.array(z), np.array(score), np.array(column)


def test_three_windows_in_a_row_short_of_the_pair_threshold_are_flagged_by_the_run_test():
    frame = series(days=9, seed=5)
    at = 8 * DAY + 84  # Tuesday 14:00
    factor = max(float(TimeAwareBaseline().fit(frame.iloc[:at]).state_.run_persist[2]), 1.0)  # learned
    depth = 4.25 * np.sqrt(3 * factor) / 3  # the sum 4.25 normal spreads of a 3-window sum; threshold 4
    assert depth < 2.5  # each window short of the pair threshold (2.5) and of the point threshold (5)
    z, score, column = _run_of_dips(frame, at, depth)
    assert (z > -2.5).all() and (z < -2.3).all()
    assert score[:2].max() < 1  # two windows are not a run yet
    assert score[2] >= 1 and column[2] == score[2]
    _, off, _ = _run_of_dips(frame, at, depth, run_threshold=np.inf)
    assert off.max() < 1


def test_the_run_tests_normal_spread_learns_from_unflagged_windows_only():
    from clickstream_anomaly.baseline import SeasonalState

    model = TimeAwareBaseline().fit(series(days=3))
    state: SeasonalState = model.state_
    learned = state.run_persist.copy()
    state.run_ring[:] = 3.0  # a run of three windows at the clip on every column
    state._learn_run(np.array([True, False, True, False]))
    assert state.run_persist[0] == learned[0] and state.run_persist[2] == learned[2]
    assert state.run_persist[1] > learned[1] and state.run_persist[3] > learned[3]
    assert np.allclose(state._run_sum(), 9.0 / np.sqrt(3 * np.maximum(state.run_persist, 1.0)))


def test_a_state_saved_before_the_run_test_loads_without_it():
    from clickstream_anomaly import persist
    from clickstream_anomaly.baseline import SeasonalState
    from clickstream_anomaly.baseline import model as baseline_model

    model = TimeAwareBaseline().fit(series(days=2))
    state = persist.loads(model.state_.to_bytes(), baseline_model.KIND)
    params = {k: v for k, v in state.meta["params"].items() if k not in ("run_memory", "run_threshold")}
    meta = {**{k: v for k, v in state.meta.items() if k != "run_pos"}, "params": params}
    arrays = {k: v for k, v in state.arrays.items() if k not in ("run_ring", "run_persist")}
    loaded = SeasonalState.from_bytes(persist.dumps(baseline_model.KIND, 2, meta, arrays))
    assert loaded.params.run_threshold == np.inf and np.isnan(loaded.run_ring).all()
    frame = series(days=3).iloc[2 * DAY :]
    again = TimeAwareBaseline().fit(series(days=2))
    again.state_ = loaded
    scores = again.process(frame)
    assert scores.warm.all() and (scores.score < 1).all()


def test_a_fitted_baseline_takes_a_new_verdict_rule_and_keeps_what_it_learned():
    frame = series(days=3)
    model = TimeAwareBaseline().fit(frame.iloc[: 2 * DAY])
    daily = model.state_.daily.copy()
    model.with_rule(run_window="1h", run_threshold=5.0)
    assert (model.state_.params.run_memory, model.state_.params.run_threshold) == (6, 5.0)
    assert np.array_equal(model.state_.daily, daily, equal_nan=True)
    scores = model.process(frame.iloc[2 * DAY :])  # the saved ring of 3 starts again as a ring of 6
    assert scores.warm.all() and (scores.score < 1).all() and model.state_.run_ring.shape == (4, 6)
    again = TimeAwareBaseline.from_bytes(model.to_bytes())
    assert (again.run_window, again.state_.params.run_memory) == ("1h", 6)
    with pytest.raises(ValueError, match="not a verdict setting"):
        model.with_rule(huber=2.0)
