"""The time-aware baseline as an estimator and as the product's default detector.

:class:`TimeAwareBaseline` learns what each window feature should be at its local time of day and day of
week (:mod:`.model`) and scores windows by how far they are from it, in spreads (a count-aware scale);
:class:`BaselineDetector` turns that into :class:`~clickstream_anomaly.records.Detection` records with the
RCF's explanation shape plus the expected value and band per column.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .. import persist
from ..base import BaseEstimator, check_is_fitted
from ..records import BASELINE, DIRECTIONS, FEATURE_COLUMNS, Detection
from ..validation import Interval, Options
from ..windowspec import WindowSpec
from .calendar import check_timezone, local_slots
from .model import COUNT, REAL, SeasonalParams, SeasonalState

KIND = "baseline.TimeAwareBaseline"
VERSION = 1
COUNT_COLUMNS: tuple[str, ...] = ("urls", "users", "clicks")
CALIBRATION_HALFLIFE = "12h"  # memory of the deviations' mean square that calibrates the spreads
RULE_PARAMS = ("point_threshold", "pair_threshold", "drift_threshold", "run_threshold", "run_memory")  # in the state
BAND_Z = 2.326  # the band of the detection record: the 1 % and 99 % points of a normal deviation


def _rate(halflife: pd.Timedelta, step: pd.Timedelta) -> float:
    """Exponential-weighting rate per update when updates come every ``step``: half weight after ``halflife``."""
    updates = max(halflife / step, 1e-9)
    return float(1.0 - 0.5 ** (1.0 / updates))


def _timedelta(value: str | pd.Timedelta, name: str) -> pd.Timedelta:
    try:
        td = pd.Timedelta(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a duration such as '6h' or '3D', got {value!r}") from exc
    if td <= pd.Timedelta(0):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return td


@dataclass
class BaselineScores:
    """Scores of consecutive windows (arrays of shape (n_windows,) or (n_windows, n_columns)).

    ``score`` is in threshold units (1.0 = at the threshold; the larger of ``|z| / point_threshold`` and
    ``drift / drift_threshold`` over the columns; for a generic column the smaller of ``|z| /
    point_threshold`` and ``novelty``); ``column_score`` the same per column. ``novelty`` is how new the
    deviation of a generic column is (:func:`~.generic.newness`; NaN for the other columns).
    """

    columns: tuple[str, ...]
    warm: np.ndarray
    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    z: np.ndarray
    drift: np.ndarray
    novelty: np.ndarray
    column_score: np.ndarray
    score: np.ndarray


class TimeAwareBaseline(BaseEstimator):
    """Expected value and spread of each window feature at its local time of day and day of week.

    Learned online from history (score each window, then learn it), robust to the incidents inside that
    history, following level changes, with a daily profile while less than a week has been seen. A
    *generic* column (a metric without a known noise model; :mod:`.generic`) is also predicted flat when
    that predicts better, and is anomalous when its deviation is both unexpected and new against its recent
    ones (``|z| * novelty >= point_threshold``).

    Parameters
    ----------
    columns : sequence of str, default the four window features
        Columns of the windows frame to model.
    count_columns : sequence of str, default ("urls", "users", "clicks")
        Which of ``columns`` are counts (square-root scale, multiplicative); the others are real-valued.
    timezone : str, default "UTC"
        IANA time zone of the site: "time of day" is local time, DST included.
    level_window : str, default "6h"
        The level (how busy the site is compared with its profile) is the median over this much recent
        traffic: it follows a change of the whole traffic within half of it.
    new_weekday_level_window : str, default "3h"
        The same on a weekday not seen yet, whose own level is unknown.
    daily_halflife, weekly_halflife : str, default "3D" and "14D"
        How fast the daily profile (per slot, updated once a day) and the weekday shape (updated once a
        week) forget.
    spread_halflife : str, default "3D"
        Memory of the squared prediction errors.
    smooth : str, default "15min"
        Half-width of the smoothing of the daily profile over neighbouring slots.
    huber : float, default 3.0
        Observations are clipped to ``expected ± huber * spread`` before they are learned.
    weekday_uncertainty : float, default 0.15
        Relative uncertainty (on the square-root scale) of the expected value on a weekday of a class not
        seen yet (the first weekend day).
    weekend : sequence of int, default (5, 6)
        The local weekend days (0 = Monday): until a weekday has been seen, its shape is taken from the
        days of its class (working days or weekend days) already seen.
    class_uncertainty : float, default 0.05
        The relative uncertainty for a weekday not seen yet whose class has been seen.
    point_threshold : float, default 5.0
        A window is anomalous when a column is this many spreads from its expected value.
    pair_threshold : float, default 2.5
        ... or when it is this many spreads from it, on the same side, in two windows in a row.
    drift_slack, drift_threshold : float, default 1.0 and 5.0
        CUSUM of the deviations beyond ``drift_slack`` spreads; anomalous past ``drift_threshold``
        (``math.inf``: no drift test).
    run_window, run_threshold : str and float, default "30min" and 4.0
        ... or when the deviations of the last ``run_window`` add up, on the window's side, to this many
        times their sum's normal spread (learned; ``math.inf``: no run test).
    warmup : str, default "1D"
        History needed before any verdict.
    generic_columns : sequence of str or None, default None
        Columns treated as generic metrics (:mod:`.generic`): a flat competitor to the seasonal
        prediction, scored by novelty, not by drift. ``None``: every column that is not one of the window
        features (``urls``, ``users``, ``clicks``, ``residual``, whose counts have a known noise model).
    novelty_memory : int, default 2016
        Deviations of a generic column a new one is compared with (2016: a week of 5-minute windows).
    novelty_neighbours : int, default 1
        A generic column's deviation is old news once this many of those lie near it (1: any one). More
        keeps a kind of anomaly that recurs a few times a week anomalous (the server-metrics bench's 2 %
        spikes: 6), at the price of more false alarms on series whose large deviations are normal (NAB).
    window : str or None, default None
        Window length; ``None`` takes it from the windows (:meth:`WindowSpec.of`).

    Attributes
    ----------
    spec_ : WindowSpec
    params_ : SeasonalParams
    state_ : SeasonalState
        The learned state (versioned bytes with :meth:`SeasonalState.to_bytes`).
    offset_ : float
        1.0: scores are in threshold units.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> starts = pd.date_range("2024-01-01", periods=3 * 144, freq="10min", tz="UTC")
    >>> clicks = (200 + 150 * np.sin(2 * np.pi * np.arange(len(starts)) / 144)).round()
    >>> frame = pd.DataFrame({"window_start": starts, "clicks": clicks})
    >>> model = TimeAwareBaseline(columns=["clicks"], count_columns=["clicks"]).fit(frame.iloc[:288])
    >>> quiet = frame.iloc[288:290].assign(clicks=[0.0, clicks[289]])
    >>> scores = model.process(quiet)
    >>> bool(scores.score[0] > 1), bool(scores.score[1] < 1)
    (True, True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "columns": [list, tuple],
        "count_columns": [list, tuple],
        "timezone": [str],
        "level_window": [str, pd.Timedelta],
        "new_weekday_level_window": [str, pd.Timedelta],
        "daily_halflife": [str, pd.Timedelta],
        "weekly_halflife": [str, pd.Timedelta],
        "spread_halflife": [str, pd.Timedelta],
        "smooth": [str, pd.Timedelta],
        "huber": [Interval(Real, 0, None, closed="neither")],
        "weekday_uncertainty": [Interval(Real, 0, None, closed="left")],
        "weekend": [list, tuple],
        "class_uncertainty": [Interval(Real, 0, None, closed="left")],
        "point_threshold": [Interval(Real, 0, None, closed="neither")],
        "drift_slack": [Interval(Real, 0, None, closed="left")],
        "drift_threshold": [Interval(Real, 0, None, closed="neither"), Options(float, {math.inf})],
        "pair_threshold": [Interval(Real, 0, None, closed="neither")],
        "run_window": [str, pd.Timedelta],
        "run_threshold": [Interval(Real, 0, None, closed="neither"), Options(float, {math.inf})],
        "warmup": [str, pd.Timedelta],
        "window": [str, pd.Timedelta, WindowSpec, None],
        "generic_columns": [list, tuple, None],
        "novelty_memory": [Interval(Integral, 2, None, closed="left")],
        "novelty_neighbours": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(  # noqa: PLR0913  (keyword-only hyperparameters, stored as given: scikit-learn's estimator contract)
        self,
        *,
        columns: Sequence[str] = FEATURE_COLUMNS,
        count_columns: Sequence[str] = COUNT_COLUMNS,
        timezone: str = "UTC",
        level_window: str = "6h",
        new_weekday_level_window: str = "3h",
        daily_halflife: str = "3D",
        weekly_halflife: str = "14D",
        spread_halflife: str = "3D",
        smooth: str = "15min",
        huber: float = 3.0,
        weekday_uncertainty: float = 0.15,
        weekend: Sequence[int] = (5, 6),
        class_uncertainty: float = 0.05,
        point_threshold: float = 5.0,
        drift_slack: float = 1.0,
        drift_threshold: float = 5.0,
        pair_threshold: float = 2.5,
        run_window: str = "30min",
        run_threshold: float = 4.0,
        warmup: str = "1D",
        window: str | None = None,
        generic_columns: Sequence[str] | None = None,
        novelty_memory: int = 2016,
        novelty_neighbours: int = 1,
    ) -> None:
        self.columns = columns
        self.count_columns = count_columns
        self.timezone = timezone
        self.level_window = level_window
        self.new_weekday_level_window = new_weekday_level_window
        self.daily_halflife = daily_halflife
        self.weekly_halflife = weekly_halflife
        self.spread_halflife = spread_halflife
        self.smooth = smooth
        self.huber = huber
        self.weekday_uncertainty = weekday_uncertainty
        self.weekend = weekend
        self.class_uncertainty = class_uncertainty
        self.point_threshold = point_threshold
        self.drift_slack = drift_slack
        self.drift_threshold = drift_threshold
        self.pair_threshold = pair_threshold
        self.run_window = run_window
        self.run_threshold = run_threshold
        self.warmup = warmup
        self.window = window
        self.generic_columns = generic_columns
        self.novelty_memory = novelty_memory
        self.novelty_neighbours = novelty_neighbours

    # ------------------------------------------------------------------------------------------- fitting
    def _resolve(self, spec: WindowSpec) -> SeasonalParams:
        self._validate_params()
        check_timezone(self.timezone)
        cols = tuple(self.columns)
        unknown = [c for c in self.count_columns if c not in cols]
        if not cols or unknown:
            raise ValueError(f"count_columns {unknown} are not among columns {list(cols)}" if cols else "no columns")
        generic = self._generic(cols)
        step = spec.length
        day = pd.Timedelta("1D")
        per_day = spec.per_day
        bins = 24 if per_day >= 24 and per_day % 24 == 0 else per_day
        return SeasonalParams(
            kinds=tuple(COUNT if c in self.count_columns else REAL for c in cols),
            per_day=per_day,
            weekly_bins=bins,
            level_window=max(1, int(_timedelta(self.level_window, "level_window") // step)),
            new_level_window=max(1, int(_timedelta(self.new_weekday_level_window, "new_weekday_level_window") // step)),
            daily_rate=_rate(_timedelta(self.daily_halflife, "daily_halflife"), day),
            weekly_rate=_rate(_timedelta(self.weekly_halflife, "weekly_halflife"), pd.Timedelta("7D") * bins / per_day),
            spread_rate=_rate(_timedelta(self.spread_halflife, "spread_halflife"), day),
            global_spread_rate=_rate(_timedelta(self.spread_halflife, "spread_halflife"), step),
            calibration_rate=_rate(pd.Timedelta(CALIBRATION_HALFLIFE), step),
            smooth=int(_timedelta(self.smooth, "smooth") // step) if pd.Timedelta(self.smooth) > pd.Timedelta(0) else 0,
            huber=float(self.huber),
            weekly_prior=float(per_day / bins),
            weekday_uncertainty=float(self.weekday_uncertainty),
            weekend=tuple(int(d) for d in self.weekend),
            class_uncertainty=float(self.class_uncertainty),
            drift_slack=float(self.drift_slack),
            drift_cap=float(self.drift_threshold) / 2.0 + float(self.drift_slack),
            drift_max=float(self.drift_threshold) + 2.0 * float(self.drift_slack),
            drift_memory=max(2, int(pd.Timedelta("1h") // step)),
            warmup_windows=max(1, int(_timedelta(self.warmup, "warmup") // step)),
            generic=generic,
            novelty_memory=int(self.novelty_memory),
            novelty_neighbours=int(self.novelty_neighbours),
            point_threshold=float(self.point_threshold),
            drift_threshold=float(self.drift_threshold),
            pair_threshold=float(self.pair_threshold),
            run_memory=max(2, int(_timedelta(self.run_window, "run_window") // step)),
            run_threshold=float(self.run_threshold),
        )

    def _generic(self, cols: tuple[str, ...]) -> tuple[int, ...]:
        """1 for each generic column of ``cols`` (see ``generic_columns``), else 0."""
        if self.generic_columns is None:
            return tuple(int(c not in FEATURE_COLUMNS) for c in cols)
        unknown = [c for c in self.generic_columns if c not in cols]
        if unknown:
            raise ValueError(f"generic_columns {unknown} are not among columns {list(cols)}")
        return tuple(int(c in self.generic_columns) for c in cols)

    def fit(self, windows: pd.DataFrame | None = None) -> TimeAwareBaseline:
        """Start a new state and learn ``windows`` (history, in time order; may be empty or None).

        Returns ``self``.
        """
        frame = windows if windows is not None else pd.DataFrame({"window_start": []})
        spec = WindowSpec.parse(self.window) if self.window is not None else WindowSpec.of(frame)
        self.spec_ = spec
        self.params_ = self._resolve(spec)
        self.state_ = SeasonalState(self.params_)
        self.offset_ = 1.0
        if len(frame):
            self.process(frame)
        return self

    # ------------------------------------------------------------------------------------------- scoring
    def _matrix(self, windows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        missing = [c for c in (*self.columns, "window_start") if c not in windows.columns]
        if missing:
            raise ValueError(f"windows lack column(s) {', '.join(missing)}")
        starts = pd.to_datetime(windows["window_start"], utc=True).to_numpy(dtype="datetime64[ns]").astype("int64")
        if len(starts) > 1 and (np.diff(starts) <= 0).any():
            pos = int(np.flatnonzero(np.diff(starts) <= 0)[0]) + 1
            raise ValueError(f"windows are not in time order at row {pos} ({windows['window_start'].iloc[pos]})")
        X = windows[list(self.columns)].to_numpy(dtype="float64")
        counts = np.array([c in self.count_columns for c in self.columns])
        for bad, what in ((~np.isfinite(X), "missing or infinite"), ((X < 0) & counts, "negative")):
            if bad.any():
                r, c = np.argwhere(bad)[0]
                when = windows["window_start"].iloc[r]
                raise ValueError(f"row {r} ({when}): {what} {self.columns[c]} ({X[r, c]:g}); a gap is a missing row")
        return starts, X

    def process(self, windows: pd.DataFrame, *, exclude: Sequence[tuple[Any, Any]] = ()) -> BaselineScores:
        """Score each window against the state, then learn it (the streaming step, in time order).

        Parameters
        ----------
        windows : DataFrame with ``window_start`` and the model's columns, in time order
            Gaps (missing windows) are fine; a NaN, infinite or negative count is an error naming the row.
        exclude : sequence of (start, end)
            Periods known to be unusual (a holiday, a planned maintenance): scored but never learned and
            never flagged.

        Returns
        -------
        BaselineScores
        """
        check_is_fitted(self, "state_")
        starts, X = self._matrix(windows)
        slots, weekdays = local_slots(starts, self.spec_, self.timezone)
        excluded = _mask(starts, exclude)
        n, f = X.shape
        out = {k: np.full((n, f), np.nan) for k in ("expected", "low", "high", "z", "drift", "novelty", "column_score")}
        warm = np.zeros(n, dtype=bool)
        for i in range(n):
            st = self.state_.step(X[i], int(slots[i]), int(weekdays[i]), learn=not excluded[i], band_z=BAND_Z)
            warm[i] = st.warm and not excluded[i]
            out["expected"][i], out["low"][i], out["high"][i], out["z"][i] = st.expected, st.low, st.high, st.z
            out["drift"][i] = np.where(st.z >= 0, st.drift_high, -st.drift_low)
            out["novelty"][i] = st.novelty
            out["column_score"][i] = st.column_score
        column_score = np.where(warm[:, None], np.nan_to_num(out["column_score"]), 0.0)
        return BaselineScores(
            columns=tuple(self.columns),
            warm=warm,
            expected=out["expected"],
            low=out["low"],
            high=out["high"],
            z=out["z"],
            drift=out["drift"],
            novelty=out["novelty"],
            column_score=column_score,
            score=column_score.max(axis=1) if f else np.zeros(n),
        )

    # ------------------------------------------------------------------------------------------- state
    def to_bytes(self) -> bytes:
        """The fitted model as a versioned state (:mod:`clickstream_anomaly.persist`): its parameters, window
        spec and :class:`SeasonalState`."""
        check_is_fitted(self, "state_")
        params = {k: (list(v) if isinstance(v, tuple | list) else v) for k, v in self.get_params().items()}
        params["window"] = self.spec_.freq
        meta = {"params": persist.encode_infinite(params)}
        return persist.dumps(KIND, VERSION, meta, {"state": np.frombuffer(self.state_.to_bytes(), dtype=np.uint8)})

    @classmethod
    def from_bytes(cls, data: bytes) -> TimeAwareBaseline:
        """Inverse of :meth:`to_bytes`: the model continues exactly where it was saved."""
        st = persist.loads(data, KIND, versions={VERSION})
        params = persist.decode_infinite(st.meta["params"])
        for key in ("columns", "count_columns", "weekend"):
            params[key] = tuple(params[key])
        model = cls(**params)
        model.spec_ = WindowSpec.parse(params["window"])
        model.params_ = model._resolve(model.spec_)
        model.state_ = SeasonalState.from_bytes(st.arrays["state"].tobytes())
        model.offset_ = 1.0
        return model.with_rule()

    def with_rule(self, **params: Any) -> TimeAwareBaseline:
        """This fitted baseline with the verdict settings ``params`` (``point_threshold``,
        ``pair_threshold``, ``drift_threshold``, ``run_window``, ``run_threshold``; none: its own) in its
        state, which keeps all it learned: the estimator holds the one verdict rule. Returns ``self``."""
        unknown = set(params) - (set(RULE_PARAMS) - {"run_memory"} | {"run_window"})  # run_memory: from run_window
        if unknown:
            raise ValueError(f"not a verdict setting: {sorted(unknown)}")
        check_is_fitted(self, "state_")
        self.set_params(**params)
        self.params_ = self._resolve(self.spec_)
        self.state_.params = replace(self.state_.params, **{k: getattr(self.params_, k) for k in RULE_PARAMS})
        return self

    def score_samples(self, windows: pd.DataFrame) -> np.ndarray:
        """Scores of ``windows`` (shape (n_windows,), threshold units, higher is more anomalous) continuing
        from the fitted state, without keeping what they teach."""
        keep = copy.deepcopy(self.state_)
        try:
            return self.process(windows).score
        finally:
            self.state_ = keep

    def decision_function(self, windows: pd.DataFrame) -> np.ndarray:
        """``offset_ - score_samples``: negative for anomalous windows."""
        return self.offset_ - self.score_samples(windows)

    def predict(self, windows: pd.DataFrame) -> np.ndarray:
        """-1 for anomalous windows, +1 for the others (shape (n_windows,))."""
        return np.where(self.decision_function(windows) < 0, -1, 1)


def _mask(starts: np.ndarray, periods: Sequence[tuple[Any, Any]]) -> np.ndarray:
    out = np.zeros(len(starts), dtype=bool)
    for lo, hi in periods:
        a = pd.Timestamp(lo)
        b = pd.Timestamp(hi)
        a = a.tz_localize("UTC") if a.tzinfo is None else a.tz_convert("UTC")
        b = b.tz_localize("UTC") if b.tzinfo is None else b.tz_convert("UTC")
        out |= (starts >= a.value) & (starts < b.value)
    return out


def detections_from_baseline(
    windows: pd.DataFrame, scores: BaselineScores, detector: str = BASELINE
) -> list[Detection]:
    """One :class:`Detection` per window: score in threshold units (threshold 1), per-column attribution
    (shares of the score), direction (sign of the deviation), strength (|z|), expected value and band;
    ``warmup`` for windows judged without enough history (never anomalous)."""
    from ..features import windows_to_records

    cols = scores.columns
    out = []
    for i, win in enumerate(windows_to_records(windows)):
        score = float(scores.score[i])
        if not scores.warm[i]:
            out.append(
                Detection(window=win, detector=detector, score=0.0, threshold=1.0, is_anomaly=False, warmup=True)
            )
            continue
        col_scores = scores.column_score[i]
        total = float(col_scores.sum()) or 1.0
        z = scores.z[i]
        det = Detection(
            window=win,
            detector=detector,
            score=score,
            threshold=1.0,
            is_anomaly=bool(score >= 1.0),
            attribution={c: float(col_scores[j] / total * score) for j, c in enumerate(cols)},
            direction={c: DIRECTIONS[0] if z[j] >= 0 else DIRECTIONS[1] for j, c in enumerate(cols)},
            strength={c: float(abs(z[j])) for j, c in enumerate(cols)},
            expected={c: float(scores.expected[i, j]) for j, c in enumerate(cols)},
            low={c: float(scores.low[i, j]) for j, c in enumerate(cols)},
            high={c: float(scores.high[i, j]) for j, c in enumerate(cols)},
        )
        if "clicks" in cols:
            j = cols.index("clicks")
            det.p01, det.p50, det.p99 = (
                float(scores.low[i, j]),
                float(scores.expected[i, j]),
                float(scores.high[i, j]),
            )
        out.append(det)
    return out
