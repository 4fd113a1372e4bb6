"""The time-aware baseline's maths: what a window should look like at its time of day and day of week.

One :class:`SeasonalState` per key (the site, later a page or a dimension) holds, per feature column:

* a **daily profile** ``daily[f, h]`` for each slot ``h`` of the local day (144 for 10-minute windows),
  read smoothed over the neighbouring slots (about ±15 minutes);
* a **weekly factor** ``weekly[f, b]`` per local weekday and hour (168 bins, read with linear
  interpolation between bin centres) that bends the daily profile into each weekday's own shape; until a
  weekday has been seen it is 1 (or 0) and an extra uncertainty stands in for it, so the first weekend is
  not an anomaly just because it is the first;
* a **level** per column: the median ratio of the recent observations to their profile (over
  ``level_window``, 6 hours by default; over ``new_level_window``, 3 hours, on a weekday not seen yet,
  whose own level is still unknown): it follows level changes (a site that grows, a busier day) while an
  incident shorter than half the window does not move it;
* a **spread** per slot and overall: the exponentially weighted mean squared prediction error.

Count columns (``urls``, ``users``, ``clicks``) are modelled on the square-root scale
``t = sqrt(x + 3/8)`` (Anscombe's transform: Poisson noise has variance 1/4 there whatever the mean), with
a multiplicative level and weekly factor, so "0 clicks where 300 are expected" is about 33 Poisson
standard deviations while "40 where 45 are expected" is 0.4; real-valued columns (``residual``, or any
metric) are modelled as they are, additively. ``z = (t - expected) / spread`` is the deviation.

**Robust learning.** Every update uses the observation clipped to ``expected ± huber · spread`` (Huber's
rule); an error beyond that counts as an expected one in the spread; a column the point test flags does
not teach the profile, the weekly factor or the spread at all (its level still learns); and no flagged
window teaches the persistence of normal deviations. So tomorrow's 14:00 stays normal after today's
outage at 14:00, and an incident does not widen the band that judges the next one.

**Drift.** Two one-sided CUSUMs per column accumulate ``z`` beyond a slack: a slow ramp that no single
window shows is flagged once the sum passes the drift threshold, while its direction holds. A **run test**
adds the deviations of the last ``run_memory`` windows (30 minutes): a drop that no single window shows
and that is too short for the CUSUM is flagged once that sum passes ``run_threshold`` times its own
normal spread, learned from the unflagged windows (traffic wobbles, so a plain sqrt(n) would be too tight).

**Generic columns.** A column without a known noise model (any metric but the window features) also gets
a flat competitor to the seasonal prediction and is scored by the novelty of its deviation against the
recent ones (:mod:`.generic`); every real-valued column gets a spread floor from its resolution.

The update of one window, :meth:`SeasonalState.step`, is the only code path: a batch run is a loop over
it, so batch and streaming give bit-identical values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import persist
from .generic import log_score, newness

KIND = "baseline.SeasonalState"
VERSION = 3  # 2: generic columns (flat competitor, novelty) and the resolution of real columns; 3: the run test
COUNT, REAL = 0, 1
ANSCOMBE = 0.375


@dataclass(frozen=True)
class SeasonalParams:
    """Resolved settings of a :class:`SeasonalState` (see :class:`~.detector.TimeAwareBaseline`).

    Rates are per update of the component (a slot is updated once a day, a weekly bin once a week, the
    level and the global spread once per window). Widths and counts are in slots.
    """

    kinds: tuple[int, ...]
    per_day: int
    weekly_bins: int
    level_window: int
    new_level_window: int
    daily_rate: float
    weekly_rate: float
    spread_rate: float
    global_spread_rate: float
    calibration_rate: float
    smooth: int
    huber: float
    weekly_prior: float
    weekday_uncertainty: float
    weekend: tuple[int, ...]
    class_uncertainty: float
    drift_slack: float
    drift_cap: float
    drift_max: float
    drift_memory: int
    warmup_windows: int
    generic: tuple[int, ...] = ()
    novelty_memory: int = 2016
    novelty_neighbours: int = 1
    point_threshold: float = 5.0
    drift_threshold: float = math.inf  # states saved before it existed learn flagged windows too
    pair_threshold: float = math.inf  # states saved before it existed have no pair test
    run_memory: int = 3
    run_threshold: float = math.inf  # states saved before it existed have no run test

    @property
    def n_features(self) -> int:
        return len(self.kinds)

    @property
    def generic_index(self) -> np.ndarray:
        """Positions of the generic columns (see :mod:`.generic`)."""
        return np.flatnonzero(np.asarray(self.generic, dtype=bool)) if self.generic else np.zeros(0, dtype=np.int64)

    def kernel(self) -> np.ndarray:
        """Triangular smoothing weights over ``2 * smooth + 1`` slots, summing to 1."""
        w = np.array([self.smooth + 1 - abs(j) for j in range(-self.smooth, self.smooth + 1)], dtype="float64")
        return w / w.sum()


@dataclass(frozen=True)
class _Where:
    """A slot of a weekday: the smoothed daily profile and the weight of the days behind it, the weekly
    factor (count) or offset (real), how well the weekday's shape is known (0-1), the relative uncertainty
    of a shape not seen yet, and the two weekly bins around the slot with the share of the second."""

    slot: int
    daily: np.ndarray
    daily_weight: float
    weekly: np.ndarray
    known: float
    novelty: float
    bins: tuple[int, int]
    share: float


@dataclass
class Step:
    """What :meth:`SeasonalState.step` found for one window, each array of shape (n_features,).

    ``warm`` is False while the baseline has too little history to judge (the first day, a slot never
    seen); then ``expected``/``low``/``high``/``z`` are NaN. ``expected``, ``low`` and ``high`` are in the
    column's units (``low``/``high`` the band at ``band_z`` spreads); ``z`` the deviation in spreads;
    ``drift_high``/``drift_low`` the CUSUMs after this window; ``column_score`` the verdict per column
    (:meth:`SeasonalState.column_score`, 1 = at the threshold); ``pair`` the smaller deviation of this window
    and the one before when both lie on the same side (signed; 0 otherwise); ``novelty`` how new the deviation of a
    generic column is (:func:`.generic.newness`; NaN for the other columns and while there is too little
    to compare with).
    """

    warm: bool
    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    z: np.ndarray
    drift_high: np.ndarray
    drift_low: np.ndarray
    novelty: np.ndarray
    pair: np.ndarray
    column_score: np.ndarray


def _transform(x: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    return np.where(kinds == COUNT, np.sqrt(np.maximum(x, 0.0) + ANSCOMBE), x)


def _untransform(t: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    return np.where(kinds == COUNT, np.maximum(np.maximum(t, 0.0) ** 2 - ANSCOMBE, 0.0), t)


_UNSET = np.empty(0)


def _unset() -> np.ndarray:
    """The marker of an array field not given to the constructor (``__post_init__`` fills it)."""
    return _UNSET


@dataclass
class SeasonalState:
    """The per-key state of the time-aware baseline (see the module docstring); about 23 KB saved for 4 columns
    of 10-minute windows, plus about 8 KB per generic column (its recent deviations, as float32)."""

    params: SeasonalParams
    daily: np.ndarray = field(default_factory=_unset)  # (F, P), NaN = slot never seen
    daily_n: np.ndarray = field(default_factory=_unset)  # (P,) updates per slot
    weekly: np.ndarray = field(default_factory=_unset)  # (F, 7 * B) factor (count) / offset
    weekly_n: np.ndarray = field(default_factory=_unset)  # (7 * B,) update weight
    level_ring: np.ndarray = field(default_factory=_unset)  # (F, level_window) recent ratios
    spread: np.ndarray = field(default_factory=_unset)  # (F, P) mean squared error per slot
    spread_n: np.ndarray = field(default_factory=_unset)  # (P,)
    spread_global: np.ndarray = field(default_factory=_unset)  # (F,)
    last_t: np.ndarray = field(default_factory=_unset)  # (F,) previous transformed value
    drift_high: np.ndarray = field(default_factory=_unset)  # (F,)
    drift_low: np.ndarray = field(default_factory=_unset)  # (F,)
    z_square: np.ndarray = field(default_factory=_unset)  # (F,) mean square deviation
    z_ring: np.ndarray = field(default_factory=_unset)  # (F, drift_memory) recent deviations
    z_persist: np.ndarray = field(default_factory=_unset)  # (F,) variance factor of their sum
    resolution: np.ndarray = field(default_factory=_unset)  # (F,) smallest change seen
    flat_ring: np.ndarray = field(default_factory=_unset)  # (G, level_window) recent values
    flat_spread: np.ndarray = field(default_factory=_unset)  # (G,) flat predictor's MSE
    loss: np.ndarray = field(default_factory=_unset)  # (2, G) log scores: seasonal, flat
    deviations: np.ndarray = field(default_factory=_unset)  # (G, novelty_memory) float32
    run: np.ndarray = field(default_factory=_unset)  # (G,) windows flagged in a row
    prev_z: np.ndarray = field(default_factory=_unset)  # (F,) deviation of the window before
    run_ring: np.ndarray = field(default_factory=_unset)  # (F, run_memory) the last deviations
    run_persist: np.ndarray = field(default_factory=_unset)  # (F,) variance factor of their sum
    seen: int = 0
    level_pos: int = 0
    calibrated: float = 0.0  # weight of the deviations the calibration has learned
    z_pos: int = 0
    compared: float = 0.0  # windows the two predictors of the generic columns were compared on
    dev_n: int = 0  # deviations kept (at most novelty_memory)
    dev_pos: int = 0
    run_pos: int = 0

    def __post_init__(self) -> None:
        p = self.params
        f, per_day, weekly = p.n_features, p.per_day, 7 * p.weekly_bins
        g = len(p.generic_index)
        defaults: dict[str, Any] = {
            "daily": np.full((f, per_day), np.nan),
            "daily_n": np.zeros(per_day),
            "weekly": np.where(np.asarray(p.kinds)[:, None] == COUNT, 1.0, 0.0) * np.ones((f, weekly)),
            "weekly_n": np.zeros(weekly),
            "level_ring": np.full((f, p.level_window), np.nan),
            "spread": np.zeros((f, per_day)),
            "spread_n": np.zeros(per_day),
            "spread_global": np.full(f, np.nan),
            "last_t": np.full(f, np.nan),
            "drift_high": np.zeros(f),
            "drift_low": np.zeros(f),
            "z_square": np.full(f, np.nan),
            "z_ring": np.full((f, p.drift_memory), np.nan),
            "z_persist": np.full(f, np.nan),
            "resolution": np.full(f, np.inf),
            "flat_ring": np.full((g, p.level_window), np.nan),
            "flat_spread": np.full(g, np.nan),
            "loss": np.full((2, g), np.nan),
            "deviations": np.zeros((g, p.novelty_memory if g else 0), dtype="float32"),
            "run": np.zeros(g),
            "prev_z": np.full(f, np.nan),
            "run_ring": np.full((f, p.run_memory), np.nan),
            "run_persist": np.full(f, np.nan),
        }
        for name, value in defaults.items():
            if getattr(self, name) is _UNSET:
                setattr(self, name, value)

    # ------------------------------------------------------------------------------------------- reading
    def _smoothed(self, table: np.ndarray, counts: np.ndarray, slot: int) -> tuple[np.ndarray, float]:
        """Kernel-weighted mean of ``table[:, slot ± smooth]`` over slots that have data, and their count."""
        p = self.params
        idx = (slot + np.arange(-p.smooth, p.smooth + 1)) % p.per_day
        k = p.kernel()
        n = counts[idx]
        have = n > 0
        if not have.any():
            return np.full(table.shape[0], np.nan), 0.0
        w = k * have
        return (table[:, idx] * w).sum(axis=1) / w.sum(), float((k * n).sum())

    def _bin(self, b: int, neutral: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Weekly factor of flat bin ``b``: the weekday's own, shrunk to the mean of the other days of its
        class (working days, weekend days), shrunk to neutral; with how much weight the own and the class
        estimates carry (each 0-1)."""
        p = self.params
        day, hour = divmod(b, p.weekly_bins)
        own_n = self.weekly_n[b]
        own = own_n / (own_n + p.weekly_prior)
        weekend = day in p.weekend
        idx = [d * p.weekly_bins + hour for d in range(7) if d != day and (d in p.weekend) == weekend]
        n = self.weekly_n[idx]
        total = float(n.sum())
        if total > 0:
            cls = total / (total + p.weekly_prior)
            cls_value = cls * (self.weekly[:, idx] * n).sum(axis=1) / total + (1.0 - cls) * neutral
        else:
            cls, cls_value = 0.0, neutral
        return own * self.weekly[:, b] + (1.0 - own) * cls_value, float(own), float(cls)

    def _where(self, slot: int, weekday: int) -> _Where:
        """Everything the prediction needs about a slot of a weekday (see :class:`_Where`)."""
        p = self.params
        daily, daily_weight = self._smoothed(self.daily, self.daily_n, slot)
        pos = (slot + 0.5) * p.weekly_bins / p.per_day - 0.5 + weekday * p.weekly_bins
        lo = math.floor(pos)
        u = pos - lo
        n_bins = 7 * p.weekly_bins
        b0, b1 = lo % n_bins, (lo + 1) % n_bins
        neutral = np.where(np.asarray(p.kinds) == COUNT, 1.0, 0.0)
        v0, own0, cls0 = self._bin(b0, neutral)
        v1, own1, cls1 = self._bin(b1, neutral)
        own = (1.0 - u) * own0 + u * own1
        cls = (1.0 - u) * cls0 + u * cls1
        novelty = (1.0 - own) * (cls * p.class_uncertainty + (1.0 - cls) * p.weekday_uncertainty)
        return _Where(
            slot=slot,
            daily=daily,
            daily_weight=daily_weight,
            weekly=(1.0 - u) * v0 + u * v1,
            known=own + (1.0 - own) * cls,
            novelty=novelty,
            bins=(b0, b1),
            share=u,
        )

    def _level(self, rho: float) -> np.ndarray:
        """The level: the median ratio (count) or difference (real) of recent observations to their profile,
        over ``level_window`` windows where the weekday is known, over the last ``new_level_window`` windows
        on a weekday not seen yet (``rho`` blends the two); neutral before any."""
        p = self.params
        neutral = np.where(np.asarray(p.kinds) == COUNT, 1.0, 0.0)
        ring = self.level_ring
        if not np.isfinite(ring).any():
            return neutral
        recent = ring[:, (self.level_pos - 1 - np.arange(p.new_level_window)) % p.level_window]
        with np.errstate(all="ignore"):
            slow = _nanmedian(ring, neutral)
            fast = _nanmedian(recent, neutral)
        return rho * slow + (1.0 - rho) * fast

    # ------------------------------------------------------------------------------------------- the step
    def step(self, x: np.ndarray, slot: int, weekday: int, *, learn: bool = True, band_z: float = 2.326) -> Step:
        """Score one window (values ``x`` of shape (n_features,), NaN = missing), then learn it.

        ``learn=False`` scores without updating (an excluded period such as a holiday).
        """
        p = self.params
        kinds = np.asarray(p.kinds)
        is_count = kinds == COUNT
        t = _transform(np.asarray(x, dtype="float64"), kinds)
        at = self._where(slot, weekday)
        level = self._level(at.known)
        s_pred, s_sd, noise_sd = self._seasonal_prediction(at, level, is_count)
        flat = self._flat_prediction(is_count)
        use_flat = self._flat_preferred()
        g = p.generic_index
        pred, sd = s_pred.copy(), s_sd.copy()
        pred[g] = np.where(use_flat, flat[0], s_pred[g])
        sd[g] = np.where(use_flat, flat[1], s_sd[g])
        warm = bool(self.seen >= p.warmup_windows and np.isfinite(pred).all() and np.isfinite(sd).all())
        nan = np.full(p.n_features, np.nan)
        z = (t - pred) / sd if warm else nan
        observed = bool(np.isfinite(t).all())
        novelty = self._novelty(t - pred, is_count) if warm else nan
        held = np.zeros(p.n_features, dtype=bool)
        with np.errstate(invalid="ignore"):
            same = np.sign(z) == np.sign(self.prev_z)
            pair = np.where(
                same & np.isfinite(z) & np.isfinite(self.prev_z), np.sign(z) * np.fmin(abs(z), abs(self.prev_z)), 0.0
            )
        if learn:
            self.prev_z = z.copy()
        if warm and learn and observed:  # an excluded window (a holiday) moves no statistic
            z0 = np.where(np.isfinite(z), z, 0.0)
            self._drift(z0)
            self._push_run(z0)
            point, drift, _ = self._scores(z, pair, novelty)
            window_feature = ~np.asarray(p.generic, dtype=bool) if p.generic else np.ones(p.n_features, dtype=bool)
            held = window_feature & (point >= 1.0)  # not taught by this window (see _learn)
            unusual = held | (window_feature & (drift >= 1.0))  # teaches no normal persistence
            self._learn_run(unusual)
            self._learn_persistence(z0, unusual)
            with np.errstate(invalid="ignore"):
                flagged = np.abs(z) * novelty >= p.point_threshold  # a generic column's verdict
            self._remember((t - pred)[g], flagged[g])
            if np.isfinite(s_pred).all():
                self._calibrate((t - s_pred) / noise_sd, at.known)
        out = Step(
            warm=warm,
            expected=_untransform(pred, kinds) if warm else nan,
            low=_untransform(pred - band_z * sd, kinds) if warm else nan,
            high=_untransform(pred + band_z * sd, kinds) if warm else nan,
            z=z,
            drift_high=self.drift_high.copy(),
            drift_low=self.drift_low.copy(),
            novelty=novelty,
            pair=pair,
            column_score=self.column_score(z, pair, novelty),
        )
        if learn and observed:
            self._learn_generic(t, (s_pred[g], flat[0]), (s_sd[g], flat[1]), kinds == REAL)
            self._learn(t, s_pred, s_sd, level, at, is_count, held)
        return out

    def _scores(self, z: np.ndarray, pair: np.ndarray, novelty: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per column, in threshold units (1 = at the threshold): the point score ``max(|z| /
        point_threshold, |pair| / pair_threshold)``, the drift score (while the window deviates by more
        than half the slack: the larger of the CUSUM of its direction over ``drift_threshold`` and the run
        test's sum on its side over ``run_threshold``) and a generic column's ``sqrt(|z| / point_threshold
        * novelty)`` (0 while its novelty is NaN)."""
        p = self.params
        half = 0.5 * p.drift_slack
        with np.errstate(invalid="ignore"):
            drift = np.where(z > half, self.drift_high, np.where(z < -half, self.drift_low, 0.0)) / p.drift_threshold
            run = self._run_sum()
            run = np.where((np.abs(z) > half) & (np.sign(run) == np.sign(z)), np.abs(run), 0.0) / p.run_threshold
            drift = np.maximum(drift, run)
            point = np.abs(z) / p.point_threshold
            judged = np.where(np.isnan(novelty), 0.0, np.sqrt(point * novelty))
        return np.maximum(point, np.abs(pair) / p.pair_threshold), drift, judged

    def column_score(self, z: np.ndarray, pair: np.ndarray, novelty: np.ndarray) -> np.ndarray:
        """The verdict per column (shape (n_features,), threshold units; anomalous at 1 or more): for a
        window feature the larger of its point and drift scores, for a generic column its novelty-weighted
        score (:meth:`_scores`). A point-flagged window feature does not teach its profile, weekly factor
        or spread (an outage does not become tomorrow's normal; its level still learns, so a lasting change
        is followed); a drifting one goes on learning them (else a shape the profile has not learned yet,
        such as the first weekday morning after a weekend, would stay flagged); neither teaches the
        persistence of normal deviations."""
        point, drift, judged = self._scores(z, pair, novelty)
        generic = np.asarray(self.params.generic, dtype=bool) if self.params.generic else np.zeros(len(z), dtype=bool)
        return np.where(generic, judged, np.maximum(point, drift))

    def _seasonal_prediction(
        self, at: _Where, level: np.ndarray, is_count: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The seasonal prediction (level times profile times weekly factor for counts, their sum for real
        columns), its spread, and the spread of the noise alone (without calibration or a new weekday)."""
        p = self.params
        seasonal = np.where(is_count, at.daily * at.weekly, at.daily + at.weekly)
        pred = np.where(is_count, level * seasonal, level + seasonal)
        noise_var = self._noise_variance(at.slot, at.daily_weight, seasonal, is_count)
        novelty_var = np.where(is_count, (at.novelty * seasonal) ** 2, noise_var * at.novelty / p.weekday_uncertainty)
        sd = np.sqrt(noise_var * self._calibration() ** 2 + novelty_var)
        return pred, sd, np.sqrt(noise_var)

    # ------------------------------------------------------------------------------------------- generic columns
    def _flat_prediction(self, is_count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The flat predictor of the generic columns, each of shape (G,): the median of their last
        ``level_window`` values and the root mean square of its errors (NaN before any)."""
        g = self.params.generic_index
        pred = _nanmedian(self.flat_ring, np.full(len(g), np.nan))
        var = np.maximum(self.flat_spread, self._floor(pred, is_count[g], self.resolution[g]))
        return pred, np.sqrt(var)

    def _flat_preferred(self) -> np.ndarray:
        """Per generic column: has the flat predictor had the better log score, over at least a day of
        windows where both predicted?"""
        if self.compared < self.params.per_day:
            return np.zeros(len(self.params.generic_index), dtype=bool)
        seasonal, flat = self.loss
        return flat < seasonal

    def _learn_generic(
        self, t: np.ndarray, preds: tuple[np.ndarray, np.ndarray], sds: tuple[np.ndarray, np.ndarray], real: np.ndarray
    ) -> None:
        """Learn the resolution of the real columns (the smallest change between consecutive windows) and,
        for the generic columns, the flat predictor (its recent values, its squared errors clipped at
        ``huber`` spreads) and the two predictors' log scores (``preds``/``sds``: seasonal, flat)."""
        p = self.params
        step = np.abs(t - self.last_t)
        self.resolution = np.where(real & (step > 0) & (step < self.resolution), step, self.resolution)
        g = p.generic_index
        if not len(g):
            return
        tg, (s_pred, f_pred), (s_sd, f_sd) = t[g], preds, sds
        if np.isfinite(f_pred).all():
            cap = np.where(np.isfinite(f_sd), p.huber * f_sd, np.inf)
            a = max(p.global_spread_rate, 1.0 / (self.seen + 1.0))
            self.flat_spread = _ew(self.flat_spread, np.minimum((tg - f_pred) ** 2, cap**2), a)
        both = np.stack([s_pred, f_pred]), np.stack([s_sd, f_sd])
        if np.isfinite(both[0]).all() and np.isfinite(both[1]).all():
            loss = log_score(tg, both[0], both[1], p.huber)
            self.loss = _ew(self.loss, loss, max(p.global_spread_rate, 1.0 / (self.compared + 1.0)))
            self.compared += 1.0
        self.flat_ring[:, self.seen % p.level_window] = tg

    def _novelty(self, dev: np.ndarray, is_count: np.ndarray) -> np.ndarray:
        """:func:`.generic.newness` of each generic column's deviation against its deviations of the last
        ``novelty_memory`` windows but those of an anomaly still going on (flagged in a row); NaN for the
        other columns and while the reference holds less than ``drift_memory`` deviations."""
        p = self.params
        out = np.full(p.n_features, np.nan)
        kept = min(self.dev_n, p.novelty_memory)
        for k, j in enumerate(p.generic_index):
            n = kept - int(self.run[k])
            if n < max(p.drift_memory, p.novelty_neighbours) or not np.isfinite(dev[j]):
                continue
            idx = (self.dev_pos - 1 - int(self.run[k]) - np.arange(n)) % p.novelty_memory
            floor = math.sqrt(float(self._floor(np.zeros(1), is_count[[j]], self.resolution[[j]])[0]))
            ref = self.deviations[k, idx].astype("float64")
            out[j] = newness(float(dev[j]), ref, floor, p.novelty_neighbours)
        return out

    def _remember(self, dev: np.ndarray, flagged: np.ndarray) -> None:
        """Keep the generic columns' deviations (shape (G,)) for :meth:`_novelty` and count the windows
        flagged in a row."""
        p = self.params
        if not len(dev):
            return
        self.deviations[:, self.dev_pos] = np.where(np.isfinite(dev), dev, 0.0)
        self.dev_pos = (self.dev_pos + 1) % p.novelty_memory
        self.dev_n = min(self.dev_n + 1, p.novelty_memory)
        self.run = np.where(flagged, np.minimum(self.run + 1, p.novelty_memory), 0.0)

    # ------------------------------------------------------------------------------------------- spreads
    def _floor(self, centre: np.ndarray, is_count: np.ndarray, resolution: np.ndarray) -> np.ndarray:
        """Smallest variance of a prediction error: 0.05 on the square-root scale of counts; for a real
        column a quarter of its squared resolution (a value that moves in steps cannot be predicted closer
        than half a step), at least a relative 1e-9."""
        res = np.where(np.isfinite(resolution), resolution, 0.0)
        return np.where(is_count, 0.05, np.maximum(1e-9 * (1.0 + np.abs(centre)) ** 2, (res / 2.0) ** 2))

    def _noise_variance(self, slot: int, daily_weight: float, seasonal: np.ndarray, is_count: np.ndarray) -> np.ndarray:
        """Variance of normal traffic around its prediction: the slot's squared errors shrunk to the overall
        ones (inflated while the profile rests on few days), at least a floor."""
        slot_var, n = self._smoothed(self.spread, self.spread_n, slot)
        prior = self.spread_global * (1.0 + 1.0 / max(daily_weight, 1.0))
        var = (n * slot_var + 2.0 * prior) / (n + 2.0) if n > 0 else prior
        return np.maximum(var, self._floor(seasonal, is_count, self.resolution))

    def _calibration(self) -> np.ndarray:
        """Factor per column that makes the deviations' mean square 1 (the variance model is approximate)."""
        return np.where(np.isfinite(self.z_square), np.sqrt(np.clip(self.z_square, 0.09, 9.0)), 1.0)

    def _calibrate(self, raw_z: np.ndarray, weight: float) -> None:
        """Learn the calibration from a deviation in noise spreads, weighted by how well the weekday is known
        (on a weekday not seen yet the deviation is partly the weekday's own difference)."""
        p = self.params
        if weight <= 0:
            return
        a = weight * max(p.calibration_rate, 1.0 / (self.calibrated + 1.0))
        neutral = np.where(np.isfinite(self.z_square), self.z_square, 1.0)  # an outlier says nothing of the noise
        self.z_square = _ew(self.z_square, np.where(np.abs(raw_z) <= p.huber, raw_z**2, neutral), a)
        self.calibrated += weight

    def _persistence(self) -> np.ndarray:
        """How much more than independent noise the sum of the last ``drift_memory`` deviations varies in
        normal traffic (at least 1): deviations persist (traffic wobbles for tens of minutes), and the
        drift test must not take a wobble for a drift."""
        return np.where(np.isfinite(self.z_persist), np.clip(self.z_persist, 1.0, 16.0), 1.0)

    def _drift(self, z: np.ndarray) -> None:
        """One-sided CUSUMs of ``z`` (scaled by the persistence) beyond the slack; increments and sums are
        capped, so a short extreme incident (which the point test flags anyway) leaves no long tail."""
        p = self.params
        zc = np.clip(z / np.sqrt(self._persistence()), -p.drift_cap, p.drift_cap)
        self.drift_high = np.clip(self.drift_high + zc - p.drift_slack, 0.0, p.drift_max)
        self.drift_low = np.clip(self.drift_low - zc - p.drift_slack, 0.0, p.drift_max)

    def _push_run(self, z: np.ndarray) -> None:
        """Keep this window's deviation (clipped at ``huber``) among the last ``run_memory`` (a ring of
        another length, from a state saved with another ``run_window``, starts again)."""
        p = self.params
        if self.run_ring.shape[1] != p.run_memory:
            self.run_ring = np.full((p.n_features, p.run_memory), np.nan)
            self.run_pos = 0
        self.run_ring[:, self.run_pos] = np.clip(z, -p.huber, p.huber)
        self.run_pos = (self.run_pos + 1) % p.run_memory

    def _run_sum(self) -> np.ndarray:
        """The sum of the last ``run_memory`` deviations in its own normal spreads (0 until there are that
        many; a variance factor of 16 until it is learned)."""
        if not np.isfinite(self.run_ring).all():
            return np.zeros(self.run_ring.shape[0])
        factor = np.where(np.isfinite(self.run_persist), np.maximum(self.run_persist, 1.0), 16.0)
        return self.run_ring.sum(axis=1) / np.sqrt(self.run_ring.shape[1] * factor)

    def _learn_run(self, flagged: np.ndarray) -> None:
        """Learn the variance factor of the run test's sum from the columns not ``flagged``."""
        if np.isfinite(self.run_ring).all():
            total = self.run_ring.sum(axis=1) ** 2 / self.run_ring.shape[1]
            learned = _ew(self.run_persist, total, self.params.global_spread_rate)
            self.run_persist = np.where(flagged, self.run_persist, learned)

    def _learn_persistence(self, z: np.ndarray, held: np.ndarray) -> None:
        """Keep the deviation (a flagged column's as 0: an incident is not normal persistence) and update
        :meth:`_persistence` of the columns not flagged."""
        p = self.params
        self.z_ring[:, self.z_pos] = np.where(held, 0.0, np.clip(z, -p.huber, p.huber))
        self.z_pos = (self.z_pos + 1) % self.z_ring.shape[1]
        if np.isfinite(self.z_ring).all():
            total = self.z_ring.sum(axis=1) ** 2 / self.z_ring.shape[1]
            self.z_persist = _ew(self.z_persist, total, np.where(held, 0.0, p.global_spread_rate))

    def _learn(
        self,
        t: np.ndarray,
        pred: np.ndarray,
        sd: np.ndarray,
        level: np.ndarray,
        at: _Where,
        is_count: np.ndarray,
        held: np.ndarray,
    ) -> None:
        """Update every component from the clipped observation (see the module docstring); columns in
        ``held`` (flagged by this window) update their level only."""
        p = self.params
        slot = at.slot
        self.seen += 1
        known = bool(np.isfinite(pred).all())
        err = t - pred if known else np.zeros_like(t)
        target = pred + np.clip(err, -p.huber * sd, p.huber * sd) if known else t
        self._learn_spread(t, err, sd, slot, at.known, known, held)
        seasonal = np.where(is_count, at.daily * at.weekly, at.daily + at.weekly)
        if known:  # the ratio to the profile joins the recent ones, whose median is the level
            ratio = np.where(is_count, t / np.maximum(seasonal, 1e-6), t - seasonal)
            self.level_ring[:, self.level_pos] = ratio
            self.level_pos = (self.level_pos + 1) % p.level_window
        # daily profile of this slot, from the observation without level and weekday
        wf = at.weekly
        d_target = np.where(is_count, target / np.maximum(level * wf, 1e-6), target - level - wf)
        a = max(p.daily_rate, 1.0 / (self.daily_n[slot] + 1.0))
        cur = self.daily[:, slot]
        self.daily[:, slot] = np.where(held, cur, np.where(np.isfinite(cur), cur + a * (d_target - cur), d_target))
        self.daily_n[slot] = min(self.daily_n[slot] + 1.0, 1e6)
        # weekly factor of the two bins around this slot, from the observation without level and profile
        if np.isfinite(at.daily).all():
            daily = at.daily
            w_target = np.where(is_count, target / np.maximum(level * daily, 1e-6), target - level - daily)
            for b, share in zip(at.bins, (1.0 - at.share, at.share), strict=True):
                if share <= 0:
                    continue
                a = share * max(p.weekly_rate, 1.0 / (self.weekly_n[b] + 1.0))
                self.weekly[:, b] += np.where(held, 0.0, a * (w_target - self.weekly[:, b]))
                self.weekly_n[b] = min(self.weekly_n[b] + share, 1e6)

    def _learn_spread(
        self, t: np.ndarray, err: np.ndarray, sd: np.ndarray, slot: int, weight: float, known: bool, held: np.ndarray
    ) -> None:
        """Squared clipped errors (weighted by how well the weekday is known) once there is a prediction,
        half the squared first differences before (the first day)."""
        p = self.params
        if known:
            if weight > 0:
                sq = np.where(np.abs(err) <= p.huber * sd, err**2, sd**2)  # an outlier: as expected
                keep = np.where(held, 0.0, 1.0)
                self.spread_global = _ew(self.spread_global, sq, keep * weight * p.global_spread_rate)
                a = weight * max(p.spread_rate, 1.0 / (self.spread_n[slot] + 1.0))
                self.spread[:, slot] += keep * a * (sq - self.spread[:, slot])
                self.spread_n[slot] = min(self.spread_n[slot] + weight, 1e6)
        elif np.isfinite(self.last_t).all():
            a = max(p.global_spread_rate, 1.0 / (self.seen + 1.0))
            self.spread_global = _ew(self.spread_global, 0.5 * (t - self.last_t) ** 2, a)
        self.last_t = t

    # ------------------------------------------------------------------------------------------- state
    _ARRAYS = (
        "daily",
        "daily_n",
        "weekly",
        "weekly_n",
        "level_ring",
        "spread",
        "spread_n",
        "spread_global",
        "last_t",
        "drift_high",
        "drift_low",
        "z_square",
        "z_ring",
        "z_persist",
        "resolution",
        "flat_ring",
        "flat_spread",
        "loss",
        "deviations",
        "run",
        "prev_z",
        "run_ring",
        "run_persist",
    )
    _COUNTERS = ("seen", "level_pos", "calibrated", "z_pos", "compared", "dev_n", "dev_pos", "run_pos")

    def to_bytes(self) -> bytes:
        """The versioned state (:mod:`clickstream_anomaly.persist`, kind ``baseline.SeasonalState``)."""
        params = {
            **self.params.__dict__,
            "kinds": list(self.params.kinds),
            "weekend": list(self.params.weekend),
            "generic": list(self.params.generic),
        }
        meta = {"params": persist.encode_infinite(params), **{name: getattr(self, name) for name in self._COUNTERS}}
        return persist.dumps(KIND, VERSION, meta, {name: getattr(self, name) for name in self._ARRAYS})

    @classmethod
    def from_bytes(cls, data: bytes) -> SeasonalState:
        # 1: no generic columns, no resolution yet; 2: no run test
        st = persist.loads(data, KIND, versions={1, 2, VERSION})
        raw = persist.decode_infinite(st.meta["params"])
        for key in ("kinds", "weekend", "generic"):
            if key in raw:
                raw[key] = tuple(int(k) for k in raw[key])
        counters: dict[str, Any] = {
            name: type(getattr(cls, name))(st.meta[name]) for name in cls._COUNTERS if name in st.meta
        }
        arrays: dict[str, Any] = {k: st.arrays[k] for k in cls._ARRAYS if k in st.arrays}
        return cls(params=SeasonalParams(**raw), **counters, **arrays)


def _nanmedian(values: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN; ``neutral`` for rows without a value."""
    finite = np.isfinite(values)
    if finite.all():
        return np.median(values, axis=1)
    out = neutral.astype("float64").copy()
    for i in np.flatnonzero(finite.any(axis=1)):
        out[i] = np.median(values[i, finite[i]])
    return out


def _ew(current: np.ndarray, value: np.ndarray, rate: float | np.ndarray) -> np.ndarray:
    """Exponentially weighted mean; a NaN ``current`` starts at ``value``."""
    return np.where(np.isfinite(current), current + rate * (value - current), value)
