"""Clickstream scenarios for backtests: realistic, varied traffic with injected, labelled incidents.

Independent of ``clickstream_anomaly.generator`` (the blog scenario): its own traffic model, its own
incident kinds, numpy only. Everything random comes from ``numpy.random.default_rng`` streams keyed by
the seed, so a (seed, level, incident mix) gives the same clicks every time.

Traffic model (per site, drawn from the seed; see :func:`draw_site`):

* the **visit rate** (visits per minute) is ``level * profile(local time) * day level * weekday level *
  wobble``. ``level`` is the peak visits per minute of a weekday (3: a small site ... 40). The daily
  profile is built in the site's local time zone (DST included) from jittered knots, smoothed: night
  minimum 10-20 % of the peak around 3-5 h, morning rise, lunch plateau, afternoon peak, evening
  shoulder. Weekends have their own shape (later rise, evening peak) at 55-85 % of a weekday. The day
  level is a random walk of a few percent a day with a small trend; the wobble is a slow
  Ornstein-Uhlenbeck process in log-rate (5-12 %, correlation 20-120 min) times a per-minute gamma
  factor, so counts are over-dispersed compared to Poisson. Some sites also have a recurring weekday
  bump (a newsletter at a fixed local hour): normal traffic that a naive detector may flag.
* **visits** arrive as a Poisson process with that rate (a Cox process, since the rate wobbles), at
  1-second resolution. A visit is a bounce (one click) or ``1 + NegBin`` clicks (mean 2.2-4.5 per visit
  overall), spaced by log-normal gaps (median 12-45 s), so a visit spreads over a few minutes.
* **users**: a share of visits (20-50 %) comes from first-time visitors; the others from a returning
  population with Zipf-Mandelbrot visit frequency (exponent 0.8-1.2, the most frequent user making a few
  visits a day). Ids look like real ids (hex, numeric, uuid-like), never like the incidents' ids.
* **pages**: a catalogue of 30-600 pages (home, search, cart, categories, products, articles) with Zipf
  popularity (exponent 0.9-1.3); landing pages favour the home page; every click draws from the
  popularity distribution.

Incidents (:data:`KINDS`), never in the first day, at any hour (each kind cycles through the night,
morning, afternoon and evening bands from a random offset), at least 2 h 30 min apart, each with its
start, end, the time from which it is visible and the cause a good explanation names
(:data:`EXPECTED_CAUSE`; :data:`CONSISTENT_CAUSE` also accepts the residual signatures):

* ``full-outage`` 20-60 min, no click at all; in half of them 10-40 % of the lost visits retry just after;
* ``partial-outage`` 30-90 min, traffic down to 20-40 %: failed requests (clicks dropped at random) or a
  lost region (whole visits dropped);
* ``slow-ramp``: the visit rate rises linearly to 1.8-2.2x over 2.5-3.5 h (new visitors), then stays 2-6 h
  and drops back in 30-60 min, or comes back linearly over 1.5-3 h; visible when the excess reaches 25 %;
* ``tracking-loss`` 30-150 min: the user id of every click (or of 60-95 % of the visits: one client
  type) becomes one placeholder (``undefined``, ``null``, ``-``, ...), users collapse, clicks go on;
* ``bot-flood`` 20-90 min: bots with ordinary-looking ids, one click every 1-8 s each, crawling the
  catalogue or hammering a few pages; as many bots as needed for 0.6-2.5x the mean click rate, at least one;
* ``page-storm`` 15-60 min: one-click visitors (10 % click twice) on one page (new or unpopular), peak
  0.8-2.5x the site's peak visit rate within 1-6 min, then decaying;
* ``broken-page`` 40-180 min: one of the 4 most popular pages (home page included) gets no click, and
  30-90 % of the visitors who hit it leave (the rest of their visit is lost).

A clean scenario (``clean=True``) has the same site with other noise and no incident.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

KINDS = (
    "full-outage",
    "partial-outage",
    "slow-ramp",
    "tracking-loss",
    "bot-flood",
    "page-storm",
    "broken-page",
)

# The (column, direction) pairs of which at least one should appear in a good explanation.
EXPECTED_CAUSE: dict[str, tuple[tuple[str, str], ...]] = {
    "full-outage": (("clicks", "LOW"),),
    "partial-outage": (("clicks", "LOW"),),
    "slow-ramp": (("clicks", "HIGH"), ("users", "HIGH")),
    "tracking-loss": (("users", "LOW"),),
    "bot-flood": (("clicks", "HIGH"), ("residual", "HIGH")),
    "page-storm": (("users", "HIGH"), ("clicks", "HIGH")),
    "broken-page": (("urls", "LOW"), ("clicks", "LOW")),
}

# Pairs that are consistent with the kind without naming it the way an operator reads it first: the
# residual signatures documented in ``clickstream_anomaly.features`` (a tracking loss drives the residual
# HIGH, a page storm of one-click visitors drives it LOW), users LOW for outages, urls HIGH for a crawler.
CONSISTENT_CAUSE: dict[str, tuple[tuple[str, str], ...]] = {
    "full-outage": (*EXPECTED_CAUSE["full-outage"], ("users", "LOW"), ("urls", "LOW")),
    "partial-outage": (*EXPECTED_CAUSE["partial-outage"], ("users", "LOW"), ("urls", "LOW")),
    "slow-ramp": EXPECTED_CAUSE["slow-ramp"],
    "tracking-loss": (*EXPECTED_CAUSE["tracking-loss"], ("residual", "HIGH")),
    "bot-flood": (*EXPECTED_CAUSE["bot-flood"], ("urls", "HIGH")),
    "page-storm": (*EXPECTED_CAUSE["page-storm"], ("residual", "LOW")),
    "broken-page": (*EXPECTED_CAUSE["broken-page"], ("users", "LOW")),
}

DEFAULT_MIX: dict[str, int] = {
    "full-outage": 4,
    "partial-outage": 2,
    "slow-ramp": 2,
    "tracking-loss": 2,
    "bot-flood": 2,
    "page-storm": 2,
    "broken-page": 2,
}

# Local-hour bands an incident is placed in (end exclusive).
BANDS: dict[str, tuple[float, float]] = {
    "night": (0.0, 6.0),
    "morning": (6.0, 11.0),
    "afternoon": (11.0, 17.0),
    "evening": (17.0, 24.0),
}

TIME_ZONES = (
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Europe/London",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "UTC",
)

MIN_GAP = pd.Timedelta("2h30min")  # between the end of one incident and the start of the next
TAIL = pd.Timedelta("1h")  # no incident ends later than this before the end of the data


# ------------------------------------------------------------------------------------------------ site


@dataclass
class Site:
    """Parameters of one synthetic site (drawn by :func:`draw_site`)."""

    tz: str
    start_date: str
    night_min: float
    weekday_knots: list[tuple[float, float]]
    weekend_knots: list[tuple[float, float]]
    weekend_min: float
    weekday_level: list[float]  # Monday .. Sunday
    day_sigma: float
    trend_per_day: float
    wobble_sigma: float
    wobble_tau_min: float
    minute_cv: float
    n_pages: int
    page_exponent: float
    home_landing: float
    clicks_per_visit: float
    bounce: float
    gap_median_s: float
    gap_sigma: float
    new_share: float
    user_exponent: float
    top_user_visits_per_day: float
    id_format: str
    newsletter: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


_WEEKDAY_KNOTS = [
    (0.0, 0.30),
    (2.0, 0.14),
    (4.0, 0.0),
    (6.0, 0.07),
    (7.5, 0.33),
    (9.0, 0.60),
    (11.0, 0.78),
    (12.5, 0.80),
    (14.5, 1.0),
    (16.5, 0.94),
    (18.0, 0.76),
    (19.5, 0.70),
    (21.0, 0.73),
    (22.5, 0.52),
]
_WEEKEND_KNOTS = [
    (0.0, 0.40),
    (2.5, 0.16),
    (5.5, 0.0),
    (8.0, 0.12),
    (10.0, 0.45),
    (12.0, 0.75),
    (14.0, 0.86),
    (16.0, 0.80),
    (18.0, 0.78),
    (20.5, 0.92),
    (22.5, 0.62),
]


def _jitter_knots(
    rng: np.random.Generator, knots: Sequence[tuple[float, float]], dh: float, dv: float
) -> list[tuple[float, float]]:
    out = []
    for i, (h, v) in enumerate(knots):
        hh = h if i == 0 else h + rng.uniform(-dh, dh)
        vv = v if v in (0.0, 1.0) else float(np.clip(v + rng.uniform(-dv, dv), 0.02, 0.97))
        out.append((round(float(hh), 3), round(vv, 3)))
    return out


def draw_site(seed: int) -> Site:
    """A site's shape from its seed (the same for every traffic level)."""
    rng = np.random.default_rng([seed, 101])
    sat = rng.uniform(0.55, 0.85)
    sun = sat * rng.uniform(0.9, 1.15)
    weekday = [1.03, 1.0, 1.0, 0.98, 0.93]
    weekday_level = [float(w * np.exp(rng.normal(0, 0.02))) for w in weekday] + [float(sat), float(min(sun, 0.95))]
    day0 = pd.Timestamp("2023-01-02") + pd.Timedelta(days=int(rng.integers(0, 3 * 365)))
    newsletter = None
    if rng.random() < 0.35:
        newsletter = {
            "hour": float(rng.uniform(7.0, 10.5)),
            "bump": float(rng.uniform(0.15, 0.35)),
            "tau_min": float(rng.uniform(15, 45)),
        }
    return Site(
        tz=str(rng.choice(TIME_ZONES)),
        start_date=str(day0.date()),
        night_min=float(rng.uniform(0.10, 0.20)),
        weekday_knots=_jitter_knots(rng, _WEEKDAY_KNOTS, 0.35, 0.06),
        weekend_knots=_jitter_knots(rng, _WEEKEND_KNOTS, 0.5, 0.07),
        weekend_min=float(rng.uniform(0.12, 0.24)),
        weekday_level=weekday_level,
        day_sigma=float(rng.uniform(0.02, 0.05)),
        trend_per_day=float(rng.uniform(-0.01, 0.015)),
        wobble_sigma=float(rng.uniform(0.05, 0.12)),
        wobble_tau_min=float(rng.uniform(20, 120)),
        minute_cv=float(rng.uniform(0.05, 0.2)),
        n_pages=int(np.exp(rng.uniform(np.log(30), np.log(600)))),
        page_exponent=float(rng.uniform(0.9, 1.3)),
        home_landing=float(rng.uniform(0.2, 0.5)),
        clicks_per_visit=float(rng.uniform(2.2, 4.5)),
        bounce=float(rng.uniform(0.3, 0.55)),
        gap_median_s=float(rng.uniform(12, 45)),
        gap_sigma=float(rng.uniform(0.7, 1.1)),
        new_share=float(rng.uniform(0.2, 0.5)),
        user_exponent=float(rng.uniform(0.8, 1.2)),
        top_user_visits_per_day=float(rng.uniform(3, 10)),
        id_format=str(rng.choice(["hex", "numeric", "uuid", "prefixed"])),
        newsletter=newsletter,
    )


def profile_curve(knots: Sequence[tuple[float, float]], minimum: float, smooth_min: float = 50.0) -> np.ndarray:
    """``(1440,)`` relative rate per minute of a local day: knots interpolated periodically, smoothed with a
    circular Gaussian of ``smooth_min`` minutes, rescaled to ``[minimum, 1]``."""
    hours = np.array([h for h, _ in knots] + [24.0 + knots[0][0]])
    values = np.array([v for _, v in knots] + [knots[0][1]])
    grid = np.arange(1440) / 60.0
    curve = np.interp(grid, hours, values)
    lag = np.arange(-720, 720)
    kernel = np.exp(-0.5 * (lag / smooth_min) ** 2)
    kernel /= kernel.sum()
    spectrum = np.fft.rfft(curve) * np.fft.rfft(np.r_[kernel[720:], kernel[:720]])
    smooth = np.fft.irfft(spectrum, n=1440)
    lo, hi = smooth.min(), smooth.max()
    return minimum + (1.0 - minimum) * (smooth - lo) / (hi - lo)


# --------------------------------------------------------------------------------------------- incidents


@dataclass
class Injected:
    """An injected incident over ``[start, end)`` (UTC), visible from ``visible``."""

    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    visible: pd.Timestamp
    band: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def expected_cause(self) -> tuple[tuple[str, str], ...]:
        return EXPECTED_CAUSE[self.kind]

    @property
    def consistent_cause(self) -> tuple[tuple[str, str], ...]:
        return CONSISTENT_CAUSE[self.kind]

    def to_dict(self, tz: str | None = None) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "visible": _iso(self.visible),
            "duration_minutes": (self.end - self.start).total_seconds() / 60.0,
            "band": self.band,
            "expected_cause": [f"{c} {d}" for c, d in self.expected_cause],
            "consistent_cause": [f"{c} {d}" for c, d in self.consistent_cause],
            "detail": self.detail,
        }
        if tz:
            out["local_start"] = self.start.tz_convert(tz).strftime("%a %Y-%m-%d %H:%M")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Injected:
        return cls(
            kind=data["kind"],
            start=pd.Timestamp(data["start"]),
            end=pd.Timestamp(data["end"]),
            visible=pd.Timestamp(data["visible"]),
            band=data.get("band", ""),
            detail=dict(data.get("detail", {})),
        )


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def mix_for_days(days: int, mix: Mapping[str, int] | None = None) -> dict[str, int]:
    """The incident mix that fits ``days`` days: the default (16 incidents) from 8 days, else one of each
    kind (or fewer) at about 2.5 incidents per scored day (4 days: one of each of the 7 kinds)."""
    mix = dict(DEFAULT_MIX if mix is None else mix)
    room = int(2.5 * (days - 1))
    if sum(mix.values()) <= room:
        return mix
    kinds = [k for k in KINDS if mix.get(k)]
    return {k: 1 for k in kinds[: max(room, 0)]}


def _duration_and_detail(kind: str, rng: np.random.Generator) -> tuple[pd.Timedelta, pd.Timedelta, dict]:
    """Duration, visible offset and parameters of one incident."""
    minutes = pd.Timedelta(minutes=1)
    if kind == "full-outage":
        dur = rng.uniform(20, 60)
        retry = float(rng.uniform(0.1, 0.4)) if rng.random() < 0.5 else 0.0
        return dur * minutes, pd.Timedelta(0), {"retry_share": round(retry, 3)}
    if kind == "partial-outage":
        dur = rng.uniform(30, 90)
        detail = {"remaining": round(float(rng.uniform(0.2, 0.4)), 3), "mode": str(rng.choice(["requests", "visits"]))}
        return dur * minutes, pd.Timedelta(0), detail
    if kind == "slow-ramp":
        rise = rng.uniform(150, 210)
        peak = float(rng.uniform(1.8, 2.2))
        mode = str(rng.choice(["stay", "back"]))
        hold = rng.uniform(120, 360) if mode == "stay" else 0.0
        back = rng.uniform(30, 60) if mode == "stay" else rng.uniform(90, 180)
        detail = {
            "peak": round(peak, 3),
            "mode": mode,
            "rise_minutes": round(float(rise), 1),
            "hold_minutes": round(float(hold), 1),
            "back_minutes": round(float(back), 1),
        }
        visible = 0.25 / (peak - 1.0) * rise
        return (rise + hold + back) * minutes, visible * minutes, detail
    if kind == "tracking-loss":
        dur = rng.uniform(30, 150)
        share = 1.0 if rng.random() < 0.5 else float(rng.uniform(0.6, 0.95))
        placeholder = str(rng.choice(["undefined", "null", "-", "anonymous", "0", "unknown"]))
        return dur * minutes, pd.Timedelta(0), {"share": round(share, 3), "placeholder": placeholder}
    if kind == "bot-flood":
        dur = rng.uniform(20, 90)
        detail = {
            "factor": round(float(rng.uniform(0.6, 2.5)), 3),
            "interval_s": round(float(rng.uniform(1.0, 8.0)), 2),
            "mode": str(rng.choice(["crawl", "hammer"])),
        }
        return dur * minutes, pd.Timedelta(0), detail
    if kind == "page-storm":
        dur = rng.uniform(15, 60)
        detail = {
            "factor": round(float(rng.uniform(0.8, 2.5)), 3),
            "rise_minutes": round(float(rng.uniform(1, 6)), 1),
            "new_page": bool(rng.random() < 0.6),
        }
        return dur * minutes, pd.Timedelta(0), detail
    if kind == "broken-page":
        dur = rng.uniform(40, 180)
        detail = {
            "rank": int(rng.choice(4, p=[0.2, 0.35, 0.3, 0.15])),
            "leave_share": round(float(rng.uniform(0.3, 0.9)), 3),
        }
        return dur * minutes, pd.Timedelta(0), detail
    raise ValueError(f"unknown incident kind {kind!r}; use one of {', '.join(KINDS)}")


def _schedule(rng: np.random.Generator, start_local: pd.Timestamp, days: int, mix: Mapping[str, int]) -> list[Injected]:
    """Place the incidents of ``mix``: never in the first local day, none overlapping (``MIN_GAP`` apart),
    spread over the days and over the hour bands (each kind cycles through the bands from a random
    offset, so the 4 full outages of the default mix fall at night, morning, afternoon and evening)."""
    band_names = list(BANDS)
    todo: list[tuple[str, str, pd.Timedelta, pd.Timedelta, dict]] = []
    for kind in KINDS:
        n = int(mix.get(kind, 0))
        offset = int(rng.integers(0, len(band_names)))
        order = [band_names[(offset + i) % len(band_names)] for i in range(len(band_names))]
        if n < len(order):
            order = list(rng.permutation(order))
        for i in range(n):
            dur, vis, detail = _duration_and_detail(kind, rng)
            todo.append((kind, order[i % len(order)], dur, vis, detail))
    unknown = set(mix) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown incident kind(s) {sorted(unknown)}; use {', '.join(KINDS)}")
    todo.sort(key=lambda t: -t[2].total_seconds())  # long ones first
    end_all = start_local + pd.Timedelta(days=days)
    placed: list[Injected] = []
    per_day = np.zeros(days)
    for kind, band, dur, vis, detail in todo:
        lo_h, hi_h = BANDS[band]
        for attempt in range(4000):
            # Prefer the days with fewest incidents; relax to any band after many attempts.
            weights = np.exp(-1.5 * per_day[1:])
            day = 1 + int(rng.choice(days - 1, p=weights / weights.sum()))
            h_lo, h_hi = (lo_h, hi_h) if attempt < 3000 else (0.0, 24.0)
            hour = rng.uniform(h_lo, h_hi)
            start = (start_local + pd.Timedelta(days=day) + pd.Timedelta(hours=hour)).floor("s")
            end = start + dur
            if end > end_all - TAIL:
                continue
            if any(start < p.end + MIN_GAP and p.start < end + MIN_GAP for p in placed):
                continue
            placed.append(
                Injected(
                    kind=kind,
                    start=start.tz_convert("UTC"),
                    end=end.tz_convert("UTC").floor("s"),
                    visible=(start + vis).tz_convert("UTC").floor("s"),
                    band=band if attempt < 3000 else "any",
                    detail=dict(detail),
                )
            )
            per_day[day] += 1
            break
        else:
            raise ValueError(f"cannot place {sum(mix.values())} incidents in {days} days: use more days or fewer")
    placed.sort(key=lambda i: i.start)
    return placed


# --------------------------------------------------------------------------------------------- scenario


@dataclass
class Scenario:
    name: str
    seed: int
    level: float
    days: int
    site: Site
    start: pd.Timestamp  # UTC, local midnight of the first day
    end: pd.Timestamp  # exclusive
    clicks: pd.DataFrame  # timestamp (datetime64 UTC, 1 s resolution), user, page; sorted by time
    incidents: list[Injected]

    @property
    def tz(self) -> str:
        return self.site.tz

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seed": self.seed,
            "level_peak_visits_per_minute": self.level,
            "days": self.days,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "time_zone": self.tz,
            "clicks": len(self.clicks),
            "site": self.site.to_dict(),
            "incidents": [i.to_dict(self.tz) for i in self.incidents],
        }


def _zipf_mandelbrot(n: int, s: float, q: float) -> np.ndarray:
    w = (np.arange(1, n + 1) + q) ** -s
    return w / w.sum()


def _solve_offset(n: int, s: float, top_share: float) -> float:
    """Offset ``q`` of Zipf-Mandelbrot weights so that the most frequent item has ``top_share``."""
    top_share = min(top_share, 0.5)
    lo, hi = 0.0, 1e6
    if _zipf_mandelbrot(n, s, lo)[0] <= top_share:
        return 0.0
    for _ in range(60):
        mid = math.sqrt(max(lo, 1e-3) * hi)
        if _zipf_mandelbrot(n, s, mid)[0] > top_share:
            lo = mid
        else:
            hi = mid
    return hi


_WORDS = (
    "shoes bags coats shirts garden kitchen books music toys tools lamps phones laptops sofas "
    "bikes tents watches games paint decor outdoor beauty sports office baby pets deals"
)


def _page_names(site: Site, rng: np.random.Generator) -> np.ndarray:
    words = np.array(_WORDS.split(" "))
    fixed = ["/", "/search", "/cart", "/checkout", "/login", "/account", "/contact", "/about", "/help"]
    n = site.n_pages
    n_cat = max(4, n // 12)
    cats = [f"/c/{words[i % len(words)]}" + (f"-{i // len(words)}" if i >= len(words) else "") for i in range(n_cat)]
    rest = max(n - len(fixed) - n_cat, 0)
    n_blog = rest // 4
    blog = [f"/blog/{2020 + i % 6}/{words[(3 * i) % len(words)]}-guide-{i}" for i in range(n_blog)]
    prods = [f"/p/{10000 + 37 * i}-{words[(7 * i) % len(words)]}" for i in range(rest - n_blog)]
    names = np.array(fixed + cats + blog + prods, dtype=object)[:n]
    # Popularity order: home first (sometimes search or a category), the fixed pages and categories high,
    # products and articles spread below: a prior by page type times log-normal noise, sorted.
    kind_prior = np.array([40.0] + [6.0] * (len(fixed) - 1) + [3.0] * n_cat + [1.0] * (len(names)))[: len(names)]
    score = kind_prior * rng.lognormal(0.0, 1.0, size=len(names))
    score[0] = score.max() * (1.5 if rng.random() < 0.75 else 0.9)
    order = np.argsort(-score, kind="stable")
    return names[order]


def _user_names(codes: np.ndarray, fmt: str, salt: int) -> np.ndarray:
    """Stable, realistic-looking ids for integer user codes."""
    out = []
    mask = (1 << 64) - 1
    for c in codes.tolist():
        h = ((int(c) + 1) * 0x9E3779B97F4A7C15 + salt) & mask
        h ^= h >> 29
        if fmt == "hex":
            out.append(f"{h & ((1 << 48) - 1):012x}")
        elif fmt == "numeric":
            out.append(str(1_000_000_000 + h % 9_000_000_000))
        elif fmt == "uuid":
            x = f"{h:016x}{(h * 0xBF58476D1CE4E5B9) & mask:016x}"
            out.append(f"{x[:8]}-{x[8:12]}-4{x[13:16]}-a{x[17:20]}-{x[20:32]}")
        else:
            out.append(f"uid_{np.base_repr(h % (36**9), 36).lower()}")
    return np.array(out, dtype=object)


def _visit_rate(site: Site, level: float, start: pd.Timestamp, n_min: int, rng: np.random.Generator) -> np.ndarray:
    """Expected visits per minute of every minute (normal traffic, no incident)."""
    local = pd.date_range(start, periods=n_min, freq="min").tz_convert(site.tz)
    minute_of_day = local.hour.to_numpy() * 60 + local.minute.to_numpy()
    dow = local.day_of_week.to_numpy()
    weekday_curve = profile_curve(site.weekday_knots, site.night_min)
    weekend_curve = profile_curve(site.weekend_knots, site.weekend_min)
    shape = np.where(dow >= 5, weekend_curve[minute_of_day], weekday_curve[minute_of_day])
    level_dow = np.asarray(site.weekday_level)[dow]
    day_code, _ = pd.factorize(local.normalize())
    n_days = int(day_code.max()) + 1
    day_log = np.cumsum(rng.normal(site.trend_per_day, site.day_sigma, size=n_days))
    day_log -= day_log[0]
    # Slow wobble (OU in log-rate) and per-minute over-dispersion (gamma factor of mean 1).
    a = math.exp(-1.0 / site.wobble_tau_min)
    eps = rng.normal(0.0, site.wobble_sigma * math.sqrt(1 - a * a), size=n_min)
    ou = np.empty(n_min)
    x = rng.normal(0.0, site.wobble_sigma)
    for i in range(n_min):
        x = a * x + eps[i]
        ou[i] = x
    k = 1.0 / site.minute_cv**2
    gamma = rng.gamma(k, 1.0 / k, size=n_min)
    rate = level * shape * level_dow * np.exp(day_log[day_code] + ou - 0.5 * site.wobble_sigma**2) * gamma
    if site.newsletter:
        nl = site.newsletter
        since = (minute_of_day - nl["hour"] * 60.0) % 1440.0
        bump = nl["bump"] * np.exp(-since / nl["tau_min"]) * (since < 6 * nl["tau_min"]) * (dow < 5)
        rate = rate * (1.0 + bump)
    return rate


def _ramp_multiplier(inc: Injected, minutes_utc: np.ndarray) -> np.ndarray:
    """Multiplier of the visit rate of a slow ramp at the given minute stamps (ns)."""
    d = inc.detail
    t = (minutes_utc - inc.start.value) / 60e9
    rise, hold, back, peak = d["rise_minutes"], d["hold_minutes"], d["back_minutes"], d["peak"]
    up = np.clip(t / rise, 0.0, 1.0)
    down = np.clip((t - rise - hold) / back, 0.0, 1.0)
    m = 1.0 + (peak - 1.0) * (up - down)
    return np.where((t >= 0) & (t < rise + hold + back), m, 1.0)


def generate_scenario(
    seed: int,
    level: float,
    days: int = 10,
    mix: Mapping[str, int] | None = None,
    *,
    clean: bool = False,
    incidents: Sequence[Injected] | None = None,
    name: str | None = None,
) -> Scenario:
    """One scenario: ``days`` days of a site (drawn from ``seed``) at peak ``level`` visits per minute.

    ``clean``: no incident. Otherwise ``incidents`` (explicit) or ``mix`` (counts per kind; default
    :func:`mix_for_days`) placed by :func:`_schedule`. Deterministic for given arguments. The incident
    schedule depends on the seed and the days, not on the level, so levels are comparable.
    """
    if days < 2:
        raise ValueError("days must be at least 2 (the first day is history)")
    if not level > 0:
        raise ValueError("level (peak visits per minute) must be positive")
    site = draw_site(seed)
    start_local = pd.Timestamp(site.start_date).tz_localize(site.tz)
    start = start_local.tz_convert("UTC")
    end = (start_local + pd.Timedelta(days=days)).tz_convert("UTC")
    n_min = int((end - start).total_seconds() // 60)
    if clean:
        injected: list[Injected] = []
    elif incidents is not None:
        injected = [replace(i, detail=dict(i.detail)) for i in sorted(incidents, key=lambda i: i.start)]
    else:
        injected = _schedule(np.random.default_rng([seed, 202, days]), start_local, days, mix_for_days(days, mix))
    rng = np.random.default_rng([seed, 303, round(level * 1000), int(clean), days])
    page_rng = np.random.default_rng([seed, 404])

    visits = _visits(site, level, days, start, n_min, injected, rng)
    page_names = _page_names(site, page_rng)
    page_p = _zipf_mandelbrot(len(page_names), site.page_exponent, 0.0)
    parts = _ClickParts(next_user=visits.next_user, next_visit=len(visits.start))
    parts.add(*_visit_clicks(site, visits, page_p, rng))
    mean_visits_per_s = float(visits.rate.mean()) / 60.0  # normal traffic, incl. the ramp's (negligible)
    for inc in injected:
        if inc.kind == "bot-flood":
            _add_bots(parts, inc, site, mean_visits_per_s, len(page_names), rng)
        elif inc.kind == "page-storm":
            _add_page_storm(parts, inc, site, level, page_names, page_p, rng)
    coded = parts.arrays()
    keep = np.ones(len(coded.ts), dtype=bool)
    u_visit = rng.random(parts.next_visit)  # per-visit draw: which visits a partial incident hits
    for inc in injected:
        lo, hi = inc.start.value // 10**9, inc.end.value // 10**9
        inside = (coded.ts >= lo) & (coded.ts < hi)
        if inc.kind == "tracking-loss":
            code = parts.next_user
            parts.extra_users[code] = inc.detail["placeholder"]
            parts.next_user += 1
            hit = inside & (u_visit[coded.visit] < inc.detail["share"])
            coded = coded._replace(user=np.where(hit, code, coded.user))
        else:
            keep &= ~_dropped(inc, inside, coded, u_visit, page_names, rng)
    keep &= (coded.ts >= start.value // 10**9) & (coded.ts < end.value // 10**9)
    clicks = _named_clicks(coded, keep, seed, site, page_names, parts)
    label = name or f"seed{seed}-level{level:g}-{'clean' if clean else 'mixed'}"
    return Scenario(label, seed, float(level), days, site, start, end, clicks, list(injected))


@dataclass
class _Visits:
    """The visits of a scenario: expected visits per minute, and each visit's start (UTC epoch seconds) and
    user code (returning users ``0..pool-1``, new users after them; ``next_user`` is the first free code)."""

    rate: np.ndarray
    start: np.ndarray
    user: np.ndarray
    next_user: int


def _visits(
    site: Site,
    level: float,
    days: int,
    start: pd.Timestamp,
    n_min: int,
    injected: Sequence[Injected],
    rng: np.random.Generator,
) -> _Visits:
    """Draw the visits of every minute (slow ramps raise the rate and bring new users; some visits lost
    in a full outage come back shortly after it)."""
    minutes_ns = start.value + np.arange(n_min, dtype="int64") * 60_000_000_000
    rate = _visit_rate(site, level, start, n_min, rng)
    new_share = np.full(n_min, site.new_share)
    for inc in injected:
        if inc.kind == "slow-ramp":
            m = _ramp_multiplier(inc, minutes_ns)
            rate = rate * m
            new_share = np.where(m > 1, 1.0 - (1.0 - site.new_share) / m, new_share)  # the extra visits are new
    per_min = rng.poisson(rate)
    n_visits = int(per_min.sum())
    start_s = start.value // 1_000_000_000
    minute_of_visit = np.repeat(np.arange(n_min, dtype="int64"), per_min)
    v_start = start_s + minute_of_visit * 60 + rng.integers(0, 60, size=n_visits)
    is_new = rng.random(n_visits) < new_share[minute_of_visit]

    # Returning users: Zipf-Mandelbrot over a pool; new users: codes after the pool.
    returning = int((~is_new).sum())
    pool = max(200, int(returning * rng.uniform(0.25, 0.6)))
    top_share = site.top_user_visits_per_day * days / max(returning, 1)
    q = _solve_offset(pool, site.user_exponent, top_share)
    v_user = np.empty(n_visits, dtype="int64")
    v_user[~is_new] = rng.choice(pool, size=returning, p=_zipf_mandelbrot(pool, site.user_exponent, q))
    v_user[is_new] = pool + np.arange(int(is_new.sum()))

    # Outage retries: some visits that fell in a full outage come back shortly after it.
    for inc in injected:
        if inc.kind == "full-outage" and inc.detail.get("retry_share", 0) > 0:
            lo, hi = inc.start.value // 10**9, inc.end.value // 10**9
            lost = (v_start >= lo) & (v_start < hi) & (rng.random(n_visits) < inc.detail["retry_share"])
            v_start[lost] = hi + rng.exponential(240.0, size=int(lost.sum())).astype("int64")
    return _Visits(rate, v_start, v_user, pool + int(is_new.sum()))


def _visit_clicks(
    site: Site, visits: _Visits, page_p: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ts, user, page, visit)`` codes of the clicks of every visit (bounces, gaps, landing pages)."""
    n_visits = len(visits.start)
    b = site.bounce
    mu = max((site.clicks_per_visit - b) / (1.0 - b) - 2.0, 0.05)  # mean clicks beyond 2 of a non-bounce visit
    r = 1.5
    n_clicks = np.where(rng.random(n_visits) < b, 1, 2 + rng.negative_binomial(r, r / (r + mu), n_visits))
    n_clicks = np.minimum(n_clicks, 200)
    total = int(n_clicks.sum())
    c_visit = np.repeat(np.arange(n_visits), n_clicks)
    first = np.r_[0, np.cumsum(n_clicks)[:-1]]
    gaps = np.ceil(rng.lognormal(np.log(site.gap_median_s), site.gap_sigma, size=total)).astype("int64")
    gaps[first] = 0
    csum = np.cumsum(gaps)
    c_ts = visits.start[c_visit] + (csum - np.repeat(csum[first], n_clicks))
    c_page = rng.choice(len(page_p), size=total, p=page_p)
    landing_home = rng.random(n_visits) < site.home_landing
    c_page[first[landing_home]] = 0
    return c_ts, visits.user[c_visit], c_page, c_visit


class _Coded(NamedTuple):
    """Clicks as integer codes, one entry per click: second (UTC epoch), user, page and visit codes."""

    ts: np.ndarray
    user: np.ndarray
    page: np.ndarray
    visit: np.ndarray


@dataclass
class _ClickParts:
    """The clicks of a scenario while it is built: parts to concatenate, the next free user and visit codes
    (bots and storm visitors take codes after the site's), pages and placeholder users added by incidents."""

    next_user: int
    next_visit: int
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    extra_pages: list[str] = field(default_factory=list)
    extra_users: dict[int, str] = field(default_factory=dict)

    def add(self, ts: np.ndarray, user: np.ndarray, page: np.ndarray, visit: np.ndarray) -> None:
        self.parts.append((ts, user, page, visit))

    def arrays(self) -> _Coded:
        """Every part concatenated, in the order added (int64)."""
        return _Coded(*(np.concatenate([p[k] for p in self.parts]).astype("int64") for k in range(4)))


def _add_bots(
    parts: _ClickParts, inc: Injected, site: Site, mean_visits_per_s: float, n_pages: int, rng: np.random.Generator
) -> None:
    """The clicks of a bot flood: ``factor`` times the site's normal click rate."""
    lo, hi = inc.start.value // 10**9, inc.end.value // 10**9
    d = inc.detail
    total_rate = d["factor"] * mean_visits_per_s * site.clicks_per_visit
    # Bots click at their own pace whatever the site's size: a small site gets one bot, which is
    # already a large share of its traffic; a big one gets several.
    interval = float(d["interval_s"])
    n_bots = int(min(max(1, round(total_rate * interval)), 30))
    inc.detail.update(n_bots=n_bots)
    for _ in range(n_bots):
        n = int((hi - lo) / interval * 1.1) + 2
        t = lo + rng.integers(0, int(interval) + 1) + np.cumsum(interval * rng.uniform(0.5, 1.5, size=n))
        t = t[t < hi].astype("int64")
        if d["mode"] == "crawl":
            pages = rng.permutation(n_pages)[np.arange(len(t)) % n_pages]
        else:
            few = rng.choice(min(n_pages, 12), size=int(rng.integers(1, 5)), replace=False)
            pages = few[rng.integers(0, len(few), size=len(t))]
        parts.add(t, np.full(len(t), parts.next_user), pages.astype("int64"), np.full(len(t), parts.next_visit))
        parts.next_user += 1
        parts.next_visit += 1


def _add_page_storm(
    parts: _ClickParts,
    inc: Injected,
    site: Site,
    level: float,
    page_names: np.ndarray,
    page_p: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """The clicks of a page storm: new visitors landing on one page (a new one, or a rarely visited one)."""
    lo, hi = inc.start.value // 10**9, inc.end.value // 10**9
    d = inc.detail
    n_pages = len(page_names)
    if d["new_page"]:
        slug = ["/promo/flash-", "/blog/2026/viral-", "/p/99", "/news/"][int(rng.integers(0, 4))]
        parts.extra_pages.append(f"{slug}{int(rng.integers(100, 999))}")
        storm_page = n_pages + len(parts.extra_pages) - 1
    else:
        storm_page = int(rng.integers(min(20, n_pages - 1), n_pages))
    inc.detail["page"] = str(parts.extra_pages[-1] if d["new_page"] else page_names[storm_page])
    secs = np.arange(lo, hi, 60)
    t_min = (secs - lo) / 60.0
    tau = max((hi - lo) / 60.0 / 2.5, 1.0)
    shape = np.minimum(1.0, t_min / d["rise_minutes"]) * np.exp(-np.maximum(t_min - d["rise_minutes"], 0) / tau)
    counts = rng.poisson(d["factor"] * level * shape)
    n = int(counts.sum())
    t = np.repeat(secs, counts) + rng.integers(0, 60, size=n)
    t = np.where(t < hi, t, hi - 1)
    two = rng.random(n) < 0.1
    t2 = t[two] + np.ceil(rng.lognormal(np.log(site.gap_median_s), site.gap_sigma, size=int(two.sum())))
    users = parts.next_user + np.arange(n)
    visits = parts.next_visit + np.arange(n)
    parts.add(t, users, np.full(n, storm_page), visits)
    parts.add(t2.astype("int64"), users[two], rng.choice(n_pages, size=int(two.sum()), p=page_p), visits[two])
    parts.next_user += n
    parts.next_visit += n


def _dropped(
    inc: Injected,
    inside: np.ndarray,
    coded: _Coded,
    u_visit: np.ndarray,
    page_names: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Bool mask of the clicks an outage or a broken page removes (none for the other kinds)."""
    d = inc.detail
    if inc.kind == "full-outage":
        return inside
    if inc.kind == "partial-outage":
        lost = 1.0 - d["remaining"]
        hit = u_visit[coded.visit] < lost if d["mode"] == "visits" else rng.random(len(coded.ts)) < lost
        return inside & hit
    if inc.kind != "broken-page":
        return np.zeros(len(coded.ts), dtype=bool)
    p = int(d["rank"])
    d["page"] = str(page_names[p])
    broken = inside & (coded.page == p)
    # Users who hit the broken page leave: their later clicks of that visit vanish too.
    order = np.lexsort((coded.ts, coded.visit))
    b_sorted = broken[order].astype("int64")
    v_sorted = coded.visit[order]
    starts = np.r_[True, v_sorted[1:] != v_sorted[:-1]]
    cs = np.cumsum(b_sorted)
    base = np.maximum.accumulate(np.where(starts, cs - b_sorted, 0))
    after = (cs - base) > 0
    leaves = u_visit[v_sorted] < d["leave_share"]
    drop = np.zeros(len(coded.ts), dtype=bool)
    drop[order] = (b_sorted > 0) | (after & leaves)
    return drop


def _named_clicks(
    coded: _Coded, keep: np.ndarray, seed: int, site: Site, page_names: np.ndarray, parts: _ClickParts
) -> pd.DataFrame:
    """The kept clicks in time order with their user and page names (timestamp, user, page)."""
    ts, user, page = coded.ts[keep], coded.user[keep], coded.page[keep]
    order = np.argsort(ts, kind="stable")
    ts, user, page = ts[order], user[order], page[order]
    codes, inverse = np.unique(user, return_inverse=True)
    salt = int(np.random.default_rng([seed, 505]).integers(0, 2**62))
    names = _user_names(codes, site.id_format, salt)
    for code, placeholder in parts.extra_users.items():
        names[codes == code] = placeholder
    all_pages = np.concatenate([page_names, np.array(parts.extra_pages, dtype=object)])
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(ts * 1_000_000_000, utc=True),
            "user": names[inverse],
            "page": all_pages[page],
        }
    )


# ------------------------------------------------------------------------------------------------- files


def write_scenario(scenario: Scenario, folder: str | Path) -> Path:
    """``folder/clicks.csv`` (timestamp ISO 8601 Z, user, page) and ``folder/incidents.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamps = np.datetime_as_string(
        scenario.clicks["timestamp"].to_numpy(dtype="datetime64[ns]").astype("datetime64[s]"), unit="s"
    )
    out = pd.DataFrame(
        {
            "timestamp": np.char.add(stamps.astype(str), "Z"),
            "user": scenario.clicks["user"],
            "page": scenario.clicks["page"],
        }
    )
    out.to_csv(folder / "clicks.csv", index=False)
    (folder / "incidents.json").write_text(json.dumps(scenario.meta(), indent=2) + "\n")
    return folder
