"""The time-aware baseline's maths: what a window should look like at its time of day and day of week.

One :class:`SeasonalState` per key (the site, later a page or a dimension) holds, per feature column:

* a **daily profile** ``daily[f, h]`` for each slot ``h`` of the local day (144 for 10-minute windows),
  read smoothed over the neighbouring slots (about ±15 minutes);
* a **weekly factor** ``weekly[f, b]`` per local weekday and hour (168 bins, read with linear
  interpolation between bin centres) that bends the daily profile into each weekday's own shape; until a
  weekday has been seen it is 1 (or 0) and an extra uncertainty stands in for it, so the first weekend is
  not an anomaly just because it is the first;
* a **level** ``level[f]`` that follows level changes (a site that grows, a busier day) over hours;
* a **spread** per slot and overall: the exponentially weighted mean squared prediction error.

Count columns (``urls``, ``users``, ``clicks``) are modelled on the square-root scale
``t = sqrt(x + 3/8)`` (Anscombe's transform: Poisson noise has variance 1/4 there whatever the mean), with
a multiplicative level and weekly factor, so "0 clicks where 300 are expected" is about 33 Poisson
standard deviations while "40 where 45 are expected" is 0.4; real-valued columns (``residual``, or any
metric) are modelled as they are, additively. ``z = (t - expected) / spread`` is the deviation.

**Robust learning.** Every update uses the observation clipped to ``expected ± huber · spread`` (Huber's
rule), so an incident moves the profile by at most a fraction of a spread: tomorrow's 14:00 stays
normal after today's outage at 14:00. The level only moves on weekday slots already seen.

**Drift.** Two one-sided CUSUMs per column accumulate ``z`` beyond a slack: a slow ramp that no single
window shows is flagged once the sum passes the drift threshold, while its direction holds.

The update of one window, :meth:`SeasonalState.step`, is the only code path: a batch run is a loop over
it, so batch and streaming give bit-identical values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import persist

KIND = "baseline.SeasonalState"
VERSION = 1
COUNT, REAL = 0, 1
_ANSCOMBE = 0.375


@dataclass(frozen=True)
class SeasonalParams:
    """Resolved settings of a :class:`SeasonalState` (see :class:`~.detector.TimeAwareBaseline`).

    Rates are per update of the component (a slot is updated once a day, a weekly bin once a week, the
    level and the global spread once per window). Widths and counts are in slots.
    """

    kinds: tuple[int, ...]
    per_day: int
    weekly_bins: int
    level_rate: float
    daily_rate: float
    weekly_rate: float
    spread_rate: float
    global_spread_rate: float
    smooth: int
    huber: float
    weekly_prior: float
    weekday_uncertainty: float
    drift_slack: float
    drift_cap: float
    drift_max: float
    warmup_windows: int

    @property
    def n_features(self) -> int:
        return len(self.kinds)

    def kernel(self) -> np.ndarray:
        """Triangular smoothing weights over ``2 * smooth + 1`` slots, summing to 1."""
        w = np.array([self.smooth + 1 - abs(j) for j in range(-self.smooth, self.smooth + 1)], dtype="float64")
        return w / w.sum()


@dataclass
class Step:
    """What :meth:`SeasonalState.step` found for one window, each array of shape (n_features,).

    ``warm`` is False while the baseline has too little history to judge (the first day, a slot never
    seen); then ``expected``/``low``/``high``/``z`` are NaN. ``expected``, ``low`` and ``high`` are in the
    column's units (``low``/``high`` the band at ``band_z`` spreads); ``z`` the deviation in spreads;
    ``drift_high``/``drift_low`` the CUSUMs after this window.
    """

    warm: bool
    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    z: np.ndarray
    drift_high: np.ndarray
    drift_low: np.ndarray


def _transform(x: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    return np.where(kinds == COUNT, np.sqrt(np.maximum(x, 0.0) + _ANSCOMBE), x)


def _untransform(t: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    return np.where(kinds == COUNT, np.maximum(np.maximum(t, 0.0) ** 2 - _ANSCOMBE, 0.0), t)


@dataclass
class SeasonalState:
    """The per-key state of the time-aware baseline (see the module docstring); about 12 KB for 4 columns
    of 10-minute windows."""

    params: SeasonalParams
    daily: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F, P), NaN = slot never seen
    daily_n: np.ndarray = field(default=None)  # type: ignore[assignment]  # (P,) updates per slot
    weekly: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F, 7 * B) factor (count) / offset
    weekly_n: np.ndarray = field(default=None)  # type: ignore[assignment]  # (7 * B,) update weight
    level_num: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,)
    level_den: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,)
    spread: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F, P) mean squared error per slot
    spread_n: np.ndarray = field(default=None)  # type: ignore[assignment]  # (P,)
    spread_global: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,)
    last_t: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,) previous transformed value
    drift_high: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,)
    drift_low: np.ndarray = field(default=None)  # type: ignore[assignment]  # (F,)
    seen: int = 0

    def __post_init__(self) -> None:
        p = self.params
        f, per_day, weekly = p.n_features, p.per_day, 7 * p.weekly_bins
        defaults: dict[str, Any] = {
            "daily": np.full((f, per_day), np.nan),
            "daily_n": np.zeros(per_day),
            "weekly": np.where(np.asarray(p.kinds)[:, None] == COUNT, 1.0, 0.0) * np.ones((f, weekly)),
            "weekly_n": np.zeros(weekly),
            "level_num": np.where(np.asarray(p.kinds) == COUNT, 1.0, 0.0).astype("float64"),
            "level_den": np.ones(f),
            "spread": np.zeros((f, per_day)),
            "spread_n": np.zeros(per_day),
            "spread_global": np.full(f, np.nan),
            "last_t": np.full(f, np.nan),
            "drift_high": np.zeros(f),
            "drift_low": np.zeros(f),
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
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

    def _weekly_at(self, slot: int, weekday: int) -> tuple[np.ndarray, float, int, int, float]:
        """Interpolated weekly factor/offset, its update weight and the two bins with the share of the second."""
        p = self.params
        pos = (slot + 0.5) * p.weekly_bins / p.per_day - 0.5 + weekday * p.weekly_bins
        lo = math.floor(pos)
        u = pos - lo
        n_bins = 7 * p.weekly_bins
        b0, b1 = lo % n_bins, (lo + 1) % n_bins
        value = (1.0 - u) * self.weekly[:, b0] + u * self.weekly[:, b1]
        weight = (1.0 - u) * self.weekly_n[b0] + u * self.weekly_n[b1]
        return value, float(weight), b0, b1, u

    @property
    def level(self) -> np.ndarray:
        return self.level_num / self.level_den

    # ------------------------------------------------------------------------------------------- the step
    def step(self, x: np.ndarray, slot: int, weekday: int, *, learn: bool = True, band_z: float = 2.326) -> Step:
        """Score one window (values ``x`` of shape (n_features,), NaN = missing), then learn it.

        ``learn=False`` scores without updating (an excluded period such as a holiday).
        """
        p = self.params
        kinds = np.asarray(p.kinds)
        x = np.asarray(x, dtype="float64")
        t = _transform(x, kinds)
        daily, daily_weight = self._smoothed(self.daily, self.daily_n, slot)
        wv, w_weight, b0, b1, u = self._weekly_at(slot, weekday)
        rho = w_weight / (w_weight + p.weekly_prior)
        level = self.level
        is_count = kinds == COUNT
        seasonal = np.where(is_count, daily * (1.0 + rho * (wv - 1.0)), daily + rho * wv)
        pred = np.where(is_count, level * seasonal, level + seasonal)
        var = self._variance(slot, seasonal, rho, daily_weight, is_count)
        sd = np.sqrt(var)
        warm = bool(self.seen >= p.warmup_windows and np.isfinite(pred).all() and np.isfinite(sd).all())
        z = (t - pred) / sd if warm else np.full(p.n_features, np.nan)
        if warm:
            self._drift(np.where(np.isfinite(z), z, 0.0))
        out = Step(
            warm=warm,
            expected=_untransform(pred, kinds) if warm else np.full(p.n_features, np.nan),
            low=_untransform(pred - band_z * sd, kinds) if warm else np.full(p.n_features, np.nan),
            high=_untransform(pred + band_z * sd, kinds) if warm else np.full(p.n_features, np.nan),
            z=z,
            drift_high=self.drift_high.copy(),
            drift_low=self.drift_low.copy(),
        )
        if learn and np.isfinite(t).all():
            self._learn(t, pred, sd, daily, wv, rho, level, slot, b0, b1, u, is_count)
        return out

    def _variance(
        self, slot: int, seasonal: np.ndarray, rho: float, daily_weight: float, is_count: np.ndarray
    ) -> np.ndarray:
        """Prediction variance: the slot's squared errors shrunk to the overall ones, plus the stand-in for
        a weekday not seen yet, at least a floor."""
        p = self.params
        slot_var, n = self._smoothed(self.spread, self.spread_n, slot)
        prior = self.spread_global * (1.0 + 1.0 / max(daily_weight, 1.0))
        var = (n * slot_var + 2.0 * prior) / (n + 2.0) if n > 0 else prior
        unseen = 1.0 - rho
        weekday = np.where(is_count, (unseen * p.weekday_uncertainty * seasonal) ** 2, unseen * var)
        floor = np.where(is_count, 0.05, 1e-9 * (1.0 + np.abs(seasonal)) ** 2)
        return np.maximum(var + weekday, floor)

    def _drift(self, z: np.ndarray) -> None:
        """One-sided CUSUMs of ``z`` beyond the slack; increments and sums are capped, so a short extreme
        incident (which the point test flags anyway) leaves no long tail behind it."""
        p = self.params
        zc = np.clip(z, -p.drift_cap, p.drift_cap)
        self.drift_high = np.clip(self.drift_high + zc - p.drift_slack, 0.0, p.drift_max)
        self.drift_low = np.clip(self.drift_low - zc - p.drift_slack, 0.0, p.drift_max)

    def _learn(
        self,
        t: np.ndarray,
        pred: np.ndarray,
        sd: np.ndarray,
        daily: np.ndarray,
        wv: np.ndarray,
        rho: float,
        level: np.ndarray,
        slot: int,
        b0: int,
        b1: int,
        u: float,
        is_count: np.ndarray,
    ) -> None:
        """Update every component from the clipped observation (see the module docstring)."""
        p = self.params
        self.seen += 1
        known = np.isfinite(pred)
        err = np.where(known, t - pred, 0.0)
        clipped = np.clip(err, -p.huber * sd, p.huber * sd) if known.all() else err
        target = np.where(known, pred + clipped, t)
        # overall spread: squared clipped errors once warm, first differences before
        if known.all():
            sq = np.minimum(err**2, (p.huber * sd) ** 2)
            self.spread_global = _ew(self.spread_global, sq, p.global_spread_rate)
            a = max(p.spread_rate, 1.0 / (self.spread_n[slot] + 1.0))
            self.spread[:, slot] += a * (sq - self.spread[:, slot])
            self.spread_n[slot] = min(self.spread_n[slot] + 1.0, 1e6)
        elif np.isfinite(self.last_t).all():
            self.spread_global = _ew(self.spread_global, 0.5 * (t - self.last_t) ** 2, p.global_spread_rate)
        self.last_t = t
        # level: only where this weekday's shape is known (else the difference is the weekday's, not a level)
        seasonal_now = np.where(is_count, daily * (1.0 + rho * (wv - 1.0)), daily + rho * wv)
        if known.all() and rho > 0:
            a = p.level_rate * rho
            weight = np.where(is_count, np.maximum(seasonal_now, 1e-6), 1.0)
            ratio = np.where(is_count, target / np.maximum(seasonal_now, 1e-6), target - seasonal_now)
            self.level_num = (1.0 - a) * self.level_num + a * weight * ratio
            self.level_den = (1.0 - a) * self.level_den + a * weight
        # daily profile of this slot, from the observation without level and weekday
        wf = np.where(is_count, 1.0 + rho * (wv - 1.0), rho * wv)
        d_target = np.where(is_count, target / np.maximum(level * wf, 1e-6), target - level - wf)
        a = max(p.daily_rate, 1.0 / (self.daily_n[slot] + 1.0))
        cur = self.daily[:, slot]
        self.daily[:, slot] = np.where(np.isfinite(cur), cur + a * (d_target - cur), d_target)
        self.daily_n[slot] = min(self.daily_n[slot] + 1.0, 1e6)
        # weekly factor of the two bins around this slot, from the observation without level and profile
        if np.isfinite(daily).all():
            w_target = np.where(is_count, target / np.maximum(level * daily, 1e-6), target - level - daily)
            for b, share in ((b0, 1.0 - u), (b1, u)):
                if share <= 0:
                    continue
                a = share * max(p.weekly_rate, 1.0 / (self.weekly_n[b] + 1.0))
                self.weekly[:, b] += a * (w_target - self.weekly[:, b])
                self.weekly_n[b] = min(self.weekly_n[b] + share, 1e6)

    # ------------------------------------------------------------------------------------------- state
    _ARRAYS = (
        "daily",
        "daily_n",
        "weekly",
        "weekly_n",
        "level_num",
        "level_den",
        "spread",
        "spread_n",
        "spread_global",
        "last_t",
        "drift_high",
        "drift_low",
    )

    def to_bytes(self) -> bytes:
        """The versioned state (:mod:`clickstream_anomaly.persist`, kind ``baseline.SeasonalState``)."""
        meta = {"params": {**self.params.__dict__, "kinds": list(self.params.kinds)}, "seen": self.seen}
        return persist.dumps(KIND, VERSION, meta, {name: getattr(self, name) for name in self._ARRAYS})

    @classmethod
    def from_bytes(cls, data: bytes) -> SeasonalState:
        st = persist.loads(data, KIND, versions={VERSION})
        raw = dict(st.meta["params"])
        raw["kinds"] = tuple(int(k) for k in raw["kinds"])
        params = SeasonalParams(**raw)
        return cls(params=params, seen=int(st.meta["seen"]), **{k: st.arrays[k] for k in cls._ARRAYS})


def _ew(current: np.ndarray, value: np.ndarray, rate: float) -> np.ndarray:
    """Exponentially weighted mean; a NaN ``current`` starts at ``value``."""
    return np.where(np.isfinite(current), current + rate * (value - current), value)
