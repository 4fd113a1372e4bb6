"""Synthetic clickstream with labelled incidents: the built-in data of the main job.

The default scenario follows the reference blog: 9 days from 2020-07-07 00:00 UTC, a daily pattern
(quiet nights, busy afternoons, weekends a little quieter, day-to-day variation), visitors who click
several pages per visit, and on 2020-07-15 two incidents:

* 10:10-11:20 ``user-miscount``: a program error writes the same user id on every click while the
  clicks go on (distinct users collapse to 1);
* 17:30-17:40 ``outage``: the whole site is down, no clicks at all.

Other incidents are injected with :func:`parse_incident` specs ``KIND@START+DURATION`` (for example
``bot-flood@2020-07-10T14:00+40min``). Kinds: ``outage``, ``user-miscount``, ``bot-flood`` (many clicks
from a few users), ``page-storm`` (one page hammered by many one-click visitors). A window is labelled
anomalous when it overlaps an incident. Output is deterministic for a given seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .features import DEFAULT_FREQ, freq_ns

INCIDENT_KINDS = ("outage", "user-miscount", "bot-flood", "page-storm")
MISCOUNT_USER = "undefined"
STORM_PAGE = "/promo/flash-sale"
_SPEC = re.compile(r"^(?P<kind>[a-z-]+)@(?P<start>[^+]+)\+(?P<duration>.+)$")


@dataclass(frozen=True)
class Incident:
    """An injected incident over ``[start, start + duration)`` (UTC)."""

    kind: str
    start: pd.Timestamp
    duration: pd.Timedelta

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r}; use one of {', '.join(INCIDENT_KINDS)}")
        if self.duration <= pd.Timedelta(0):
            raise ValueError(f"incident duration must be positive, got {self.duration}")

    @property
    def end(self) -> pd.Timestamp:
        return self.start + self.duration

    def spec(self) -> str:
        return f"{self.kind}@{self.start.strftime('%Y-%m-%dT%H:%M')}+{int(self.duration.total_seconds() // 60)}min"


def parse_incident(spec: str) -> Incident:
    """``KIND@START+DURATION`` -> :class:`Incident`, e.g. ``outage@2020-07-10T03:00+30min``."""
    m = _SPEC.match(spec.strip())
    if not m:
        raise ValueError(
            f"bad incident spec {spec!r}: expected KIND@START+DURATION, e.g. outage@2020-07-10T03:00+30min"
        )
    try:
        start = _utc(m["start"])
        duration = pd.Timedelta(m["duration"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bad incident spec {spec!r}: {exc}") from exc
    return Incident(m["kind"], start, duration)


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


BLOG_INCIDENTS: tuple[Incident, ...] = (
    Incident("user-miscount", _utc("2020-07-15 10:10"), pd.Timedelta("70min")),
    Incident("outage", _utc("2020-07-15 17:30"), pd.Timedelta("10min")),
)


@dataclass
class Scenario:
    """Parameters of a synthetic clickstream.

    ``volume`` scales traffic (1.0: about 400 clicks per 10 minutes at the afternoon peak, 45 at night,
    about 200 000 clicks over the 9 days).
    """

    start: str = "2020-07-07 00:00"
    days: int = 9
    volume: float = 1.0
    seed: int = 0
    incidents: tuple[Incident, ...] = field(default=BLOG_INCIDENTS)
    n_users: int = 20_000
    n_pages: int = 60
    mean_pages_per_visit: float = 3.3
    mean_seconds_between_clicks: float = 45.0
    day_to_day_sigma: float = 0.07
    weekend_factor: float = 0.8
    peak_visits_per_minute: float = 12.0

    def __post_init__(self) -> None:
        if self.days <= 0:
            raise ValueError("days must be positive")
        if self.volume <= 0:
            raise ValueError("volume must be positive")
        if self.mean_pages_per_visit < 1:
            raise ValueError("mean_pages_per_visit must be at least 1")


def daily_profile(hour: np.ndarray) -> np.ndarray:
    """Relative visit rate by hour of day (float hours, UTC): quiet nights, a broad afternoon peak."""
    return 0.12 + np.exp(-(((hour - 15.0) / 4.5) ** 2))


def _page_names(n: int) -> np.ndarray:
    fixed = ["/", "/search", "/cart", "/checkout", "/account", "/help"]
    cats = [f"/category/{i}" for i in range(1, 9)]
    names = fixed + cats
    names += [f"/product/{i:04d}" for i in range(1, max(n - len(names), 0) + 1)]
    return np.asarray(names[:n], dtype=object)


def _zipf_weights(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def generate(scenario: Scenario | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate ``(clicks, labels)``.

    ``clicks``: ``timestamp`` (datetime64 UTC, ms resolution), ``user``, ``page``, sorted by time.
    ``labels``: one row per 10-minute window: ``window_start, is_anomaly (0/1), incident`` (kind or "").
    """
    sc = scenario or Scenario()
    rng = np.random.default_rng(sc.seed)
    start = _utc(sc.start).floor("min")
    n_min = sc.days * 24 * 60
    minutes = start + pd.to_timedelta(np.arange(n_min), unit="min")
    hour = minutes.hour.to_numpy() + minutes.minute.to_numpy() / 60.0
    day_idx = np.arange(n_min) // (24 * 60)
    day_factor = np.exp(rng.normal(0.0, sc.day_to_day_sigma, size=sc.days))
    weekend = np.isin(minutes.day_of_week.to_numpy(), (5, 6))
    rate = (
        sc.peak_visits_per_minute
        * sc.volume
        / daily_profile(np.array([15.0]))[0]
        * daily_profile(hour)
        * day_factor[day_idx]
        * np.where(weekend, sc.weekend_factor, 1.0)
    )

    visits_per_min = rng.poisson(rate)
    n_visits = int(visits_per_min.sum())
    start_ns = int(start.value)
    visit_start = (
        start_ns
        + np.repeat(np.arange(n_min, dtype="int64") * 60_000_000_000, visits_per_min)
        + (rng.random(n_visits) * 60e9).astype("int64")
    )
    p_geom = 1.0 / sc.mean_pages_per_visit
    pages_per_visit = rng.geometric(p_geom, size=n_visits)
    total = int(pages_per_visit.sum())
    visit_of_click = np.repeat(np.arange(n_visits), pages_per_visit)
    gaps = rng.exponential(sc.mean_seconds_between_clicks * 1e9, size=total)
    first = np.r_[0, np.cumsum(pages_per_visit)[:-1]]
    gaps[first] = 0.0
    csum = np.cumsum(gaps)
    offset = csum - np.repeat(csum[first], pages_per_visit)
    ts = visit_start[visit_of_click] + offset.astype("int64")

    user_weights = _zipf_weights(sc.n_users, 0.6)
    users_of_visit = rng.choice(sc.n_users, size=n_visits, p=user_weights)
    user = np.char.add("u", np.char.zfill(users_of_visit.astype(str), 6)).astype(object)[visit_of_click]
    names = _page_names(sc.n_pages)
    page = names[rng.choice(sc.n_pages, size=total, p=_zipf_weights(sc.n_pages, 1.1))]

    clicks = pd.DataFrame({"ts": ts, "user": user, "page": page})
    for inc in sc.incidents:
        clicks = _inject(clicks, inc, rng, sc)
    clicks = clicks.sort_values("ts", kind="stable", ignore_index=True)
    end_ns = start_ns + n_min * 60_000_000_000
    clicks = clicks[(clicks["ts"] >= start_ns) & (clicks["ts"] < end_ns)]
    # Millisecond resolution, as click logs usually carry.
    stamps = pd.to_datetime((clicks["ts"].to_numpy() // 1_000_000) * 1_000_000, utc=True)
    out = pd.DataFrame({"timestamp": stamps, "user": clicks["user"].to_numpy(), "page": clicks["page"].to_numpy()})
    return out, labels_for(start, sc.days, sc.incidents)


def _inject(clicks: pd.DataFrame, inc: Incident, rng: np.random.Generator, sc: Scenario) -> pd.DataFrame:
    lo, hi = int(inc.start.value), int(inc.end.value)
    inside = (clicks["ts"] >= lo) & (clicks["ts"] < hi)
    if inc.kind == "outage":
        return clicks[~inside]
    if inc.kind == "user-miscount":
        clicks = clicks.copy()
        clicks.loc[inside, "user"] = MISCOUNT_USER
        return clicks
    seconds = (hi - lo) / 1e9
    scale = sc.volume * sc.peak_visits_per_minute / 4.0  # incident size follows the site's traffic
    if inc.kind == "bot-flood":
        n_bots = max(1, round(4 * scale))
        n = int(seconds / 5.0 * n_bots)  # each bot clicks every ~5 s
        bots = np.asarray([f"bot{i:02d}" for i in range(n_bots)], dtype=object)
        extra = pd.DataFrame(
            {
                "ts": lo + (rng.random(n) * (hi - lo)).astype("int64"),
                "user": bots[rng.integers(0, n_bots, n)],
                "page": _page_names(sc.n_pages)[rng.integers(0, sc.n_pages, n)],
            }
        )
    else:  # page-storm: one page, many one-click visitors
        n = int(seconds / 3.0 * scale)  # ~200 extra clicks per 10 minutes per unit of scale
        extra = pd.DataFrame(
            {
                "ts": lo + (rng.random(n) * (hi - lo)).astype("int64"),
                "user": np.char.add("s", np.arange(n).astype(str)).astype(object),
                "page": np.full(n, STORM_PAGE, dtype=object),
            }
        )
    return pd.concat([clicks, extra], ignore_index=True)


def labels_for(
    start: pd.Timestamp | str, days: int, incidents: tuple[Incident, ...] | list[Incident], freq: str = DEFAULT_FREQ
) -> pd.DataFrame:
    """Window labels: ``window_start, is_anomaly, incident`` for every window of ``days`` days."""
    step = freq_ns(freq)
    first = (int(_utc(start).value) // step) * step
    n = int(days * 86_400_000_000_000 // step)
    starts = first + np.arange(n, dtype="int64") * step
    kind = np.full(n, "", dtype=object)
    for inc in incidents:
        lo, hi = int(inc.start.value), int(inc.end.value)
        overlap = (starts < hi) & (starts + step > lo)
        kind[overlap & (kind == "")] = inc.kind
        both = overlap & (kind != "") & (kind != inc.kind)
        kind[both] = np.char.add(kind[both].astype(str), "+" + inc.kind).astype(object)
    return pd.DataFrame(
        {"window_start": pd.to_datetime(starts, utc=True), "is_anomaly": (kind != "").astype("int64"), "incident": kind}
    )


def write_labels(labels: pd.DataFrame, path: str | Path) -> None:
    out = labels.copy()
    out["window_start"] = pd.to_datetime(out["window_start"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)


def read_labels(path: str | Path) -> pd.DataFrame:
    """Read ``labels.csv`` (``window_start, is_anomaly[, incident]``)."""
    frame = pd.read_csv(path, dtype={"incident": str}, keep_default_na=False)
    if "window_start" not in frame or "is_anomaly" not in frame:
        raise ValueError(f"{path}: a labels CSV needs columns window_start,is_anomaly")
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True, format="ISO8601")
    frame["is_anomaly"] = frame["is_anomaly"].astype("int64")
    if "incident" not in frame:
        frame["incident"] = ""
    return frame
