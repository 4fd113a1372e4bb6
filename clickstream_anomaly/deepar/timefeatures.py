"""Frequency strings, time features and lags, chosen by frequency as SageMaker DeepAR documents.

``time_freq`` is an integer multiple (optional) followed by ``min``, ``H``, ``D``, ``W`` or ``M``
(``"10min"``, ``"H"``, ``"2D"``). Derived time features (each scaled to [-0.5, 0.5]):

=====  ====================================================================
min    minute-of-hour, hour-of-day, day-of-week, day-of-month, day-of-year
H      hour-of-day, day-of-week, day-of-month, day-of-year
D      day-of-week, day-of-month, day-of-year
W      day-of-month, week-of-year
M      month-of-year
=====  ====================================================================

Features whose cycle is longer than the training data (day-of-month and day-of-year for a week of
10-minute data) are left out when a model is trained (:func:`features_for_span`): the values they take
at forecast time were never seen in training, and within the training span they only tell the days
apart, which lets the network memorise each day's level.

Lags (in steps): the previous value for every frequency, plus seasonal lags that reach at least a day
back for sub-daily data (``min``: 1 and 2 days, each +-1 step, e.g. 143-145 and 287-289 for ``10min``;
``H``: 1, 2, 3 days and a week, each +-1), 1-4 weeks and a year (+-1) for daily data (the two examples
in the SageMaker docs), a quarter and a year for weekly data, a year and two for monthly data.
SageMaker's full lag list is not published; this is our choice and it is recorded in the saved model.
We dropped GluonTS's short lags 2..7: on the clickstream benchmark the network learned short-term
momentum from them, which drifts when sampling a whole day ahead (see the README's DeepAR section).
A lag that reaches before the series start is read one season later (:func:`season_length` steps, a day
for sub-daily data) when that is still in the past, so training windows can start after one season
instead of after the largest lag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..windowspec import WindowSpec

FREQ_UNITS = ("min", "H", "D", "W", "M")
_FREQ = re.compile(r"^(?P<n>[1-9][0-9]*)?(?P<unit>min|H|D|W|M)$")


@dataclass(frozen=True)
class Freq:
    """A parsed ``time_freq``: ``n`` units of ``unit``."""

    n: int
    unit: str

    @property
    def text(self) -> str:
        return f"{self.n}{self.unit}" if self.n != 1 else self.unit

    def offset(self) -> pd.DateOffset | pd.Timedelta:
        """The step between two observations."""
        if self.unit == "min":
            return pd.Timedelta(minutes=self.n)
        if self.unit == "H":
            return pd.Timedelta(hours=self.n)
        if self.unit == "D":
            return pd.Timedelta(days=self.n)
        if self.unit == "W":
            return pd.Timedelta(weeks=self.n)
        return pd.DateOffset(months=self.n)


def parse_freq(time_freq: str) -> Freq:
    """``"10min"`` -> ``Freq(10, "min")``; raises ``ValueError`` naming the accepted forms."""
    m = _FREQ.match(str(time_freq).strip()) if isinstance(time_freq, str) else None
    if not m:
        raise ValueError(
            f"bad time_freq {time_freq!r}: use an optional positive integer followed by one of "
            f"{', '.join(FREQ_UNITS)} (e.g. '10min', 'H', '2D')"
        )
    n = int(m["n"]) if m["n"] else 1
    if m["unit"] == "min" and n >= 60 * 24 * 7:
        raise ValueError(f"bad time_freq {time_freq!r}: use H, D or W for steps of a week or more")
    return Freq(n, m["unit"])


def time_index(start: pd.Timestamp | str, length: int, freq: Freq) -> pd.DatetimeIndex:
    """``length`` timestamps (naive UTC) from ``start`` every ``freq``."""
    return pd.date_range(pd.Timestamp(start), periods=length, freq=freq.offset())


#: Length of each time feature's cycle, in days (a month and a year at their longest).
FEATURE_CYCLE_DAYS: dict[str, float] = {
    "minute_of_hour": 1.0 / 24.0,
    "hour_of_day": 1.0,
    "day_of_week": 7.0,
    "day_of_month": 31.0,
    "day_of_year": 366.0,
    "week_of_year": 366.0,
    "month_of_year": 366.0,
}


def time_freq_for(spec: WindowSpec) -> str:
    """DeepAR's ``time_freq`` for a window length: ``"10min"``, ``"1H"``, ``"1D"``.

    Raises ``ValueError`` for lengths DeepAR cannot express (seconds, or not a whole number of minutes).
    """
    seconds = spec.seconds
    if seconds <= 0 or seconds % 60:
        raise ValueError(f"DeepAR needs windows of whole minutes, got {spec.freq}")
    minutes = int(seconds // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}D"
    if minutes % 60 == 0:
        return f"{minutes // 60}H"
    return f"{minutes}min"


def steps_per_day(freq: Freq) -> float:
    """Observations per day (fractional for weekly and monthly data)."""
    days = {"min": 1.0 / 1440.0, "H": 1.0 / 24.0, "D": 1.0, "W": 7.0, "M": 30.4375}[freq.unit] * freq.n
    return 1.0 / days


def season_length(freq: Freq) -> int:
    """The main seasonal period in steps: a day for sub-daily data (at least 2 steps), a week for daily data,
    a year for weekly and monthly data. Also the default ``context_length`` and ``prediction_length``."""
    per_day = steps_per_day(freq)
    if freq.unit in ("min", "H"):
        return max(2, round(per_day))
    if freq.unit == "D":
        return max(1, round(7 * per_day))
    return max(1, round(365.25 * per_day))


def features_for_span(freq: Freq, span_days: float) -> tuple[str, ...]:
    """The time features of ``freq`` whose cycle fits in ``span_days`` days of training data."""
    return tuple(name for name in feature_names(freq) if FEATURE_CYCLE_DAYS[name] <= span_days)


def feature_names(freq: Freq) -> tuple[str, ...]:
    """SageMaker's documented time features for ``freq``."""
    return {
        "min": ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_month", "day_of_year"),
        "H": ("hour_of_day", "day_of_week", "day_of_month", "day_of_year"),
        "D": ("day_of_week", "day_of_month", "day_of_year"),
        "W": ("day_of_month", "week_of_year"),
        "M": ("month_of_year",),
    }[freq.unit]


def time_features(index: pd.DatetimeIndex, freq: Freq, names: tuple[str, ...] | None = None) -> np.ndarray:
    """Time features ``names`` (default: all of ``freq``'s) of ``index``, ndarray of shape
    (len(index), n_features), values in [-0.5, 0.5]."""
    cols = {
        "minute_of_hour": index.minute.to_numpy() / 59.0,
        "hour_of_day": index.hour.to_numpy() / 23.0,
        "day_of_week": index.day_of_week.to_numpy() / 6.0,
        "day_of_month": (index.day.to_numpy() - 1) / 30.0,
        "day_of_year": (index.day_of_year.to_numpy() - 1) / 365.0,
        "week_of_year": (index.isocalendar().week.to_numpy().astype("float64") - 1) / 52.0,
        "month_of_year": (index.month.to_numpy() - 1) / 11.0,
    }
    names = feature_names(freq) if names is None else names
    if not names:
        return np.zeros((len(index), 0))
    return np.stack([np.asarray(cols[name], dtype="float64") - 0.5 for name in names], axis=1)


def lags_for(freq: Freq) -> tuple[int, ...]:
    """Lag offsets in steps, sorted, for ``freq`` (see the module docstring)."""
    lags = {1}

    def around(k: float) -> None:
        k = round(k)
        if k >= 1:
            lags.update({max(k - 1, 1), k, k + 1})

    if freq.unit == "min":
        per_day = 1440.0 / freq.n
        if per_day >= 8:
            for d in (1, 2):
                around(per_day * d)
        else:
            lags.update(range(2, 8))
    elif freq.unit == "H":
        per_day = 24.0 / freq.n
        for d in (1, 2, 3):
            around(per_day * d)
        around(per_day * 7)
    elif freq.unit == "D":
        for w in (1, 2, 3, 4):
            around(7.0 * w / freq.n)
        around(365.0 / freq.n)
    elif freq.unit == "W":
        around(13.0 / freq.n)
        around(52.0 / freq.n)
    else:
        lags.update(round(k / freq.n) for k in (12, 24) if k >= freq.n)
    return tuple(sorted(lag for lag in lags if lag >= 1))
